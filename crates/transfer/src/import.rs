//! Import: stream one Drive file into the blob store, verify it, and mark its placeholder ready.

use ferry_core::ConnectionId;
use ferry_db::jobs::{ClaimedItem, ImportedBlob};
use ferry_drive::{DriveError, DriveFile};
use ferry_storage::{StorageError, file_blob_key};
use futures::TryStreamExt;

use crate::outcome::ItemFailure;
use crate::worker::TransferContext;

pub(crate) async fn import_item(ctx: &TransferContext, claimed: &ClaimedItem) -> Result<(), ItemFailure> {
    let item = &claimed.item;
    let connection_id = ConnectionId(claimed.job.connection_id);
    let drive_file_id = item
        .drive_file_id
        .as_deref()
        .ok_or_else(|| ItemFailure::permanent("invalid_item", "import item has no Drive file id"))?;

    let (token, metadata) =
        with_token_retry(ctx, connection_id, |token| async move { ctx.drive.get_file(&token, drive_file_id).await })
            .await?;
    check_importable(&metadata)?;

    let download = match ctx.drive.download(&token, drive_file_id, 0).await {
        Ok(download) => download,
        Err(err) => return Err(err.into()),
    };
    let blob_key = file_blob_key(&claimed.job.tenant_id, &item.file_id);
    // The key is deterministic, so a retry after a crash overwrites the partial attempt instead of leaving a
    // second copy behind.
    let stored = ctx.storage.put_stream(&blob_key, download.stream.map_err(|err: DriveError| err)).await.map_err(
        |err| match err {
            StorageError::Source { source, .. } => ItemFailure::from(source),
            other => ItemFailure::from(other),
        },
    )?;

    if let Some(size) = metadata.size
        && size != stored.size
    {
        return Err(ItemFailure::transient(
            "size_mismatch",
            format!("Drive reported {size} bytes but {} arrived", stored.size),
        ));
    }
    if let Some(expected) = metadata.md5_checksum.as_deref()
        && !expected.eq_ignore_ascii_case(&stored.md5_hex)
    {
        return Err(ItemFailure::transient("checksum_mismatch", "the downloaded bytes do not match Drive's MD5"));
    }

    let size_bytes = i64::try_from(stored.size)
        .map_err(|_| ItemFailure::permanent("file_too_large", "file size does not fit in 63 bits"))?;
    let finish = ctx
        .db
        .complete_import_item(
            item.item_id(),
            ImportedBlob {
                size_bytes,
                mime_type: &metadata.mime_type,
                sha256: &stored.sha256_hex,
                md5: &stored.md5_hex,
                blob_key: &blob_key,
            },
        )
        .await?;
    tracing::info!(
        item_id = %item.item_id(),
        bytes = stored.size,
        job_status = ?finish.job_status,
        "imported"
    );
    metrics::counter!("ferry_import_bytes_total").increment(stored.size);
    Ok(())
}

fn check_importable(file: &DriveFile) -> Result<(), ItemFailure> {
    if file.is_folder() {
        return Err(ItemFailure::permanent("not_importable", format!("`{}` is a folder", file.name)));
    }
    if file.is_google_workspace() {
        return Err(ItemFailure::permanent(
            "not_importable",
            format!("`{}` is a Google Workspace file ({}), which has no binary content", file.name, file.mime_type),
        ));
    }
    if file.trashed {
        return Err(ItemFailure::permanent("not_importable", format!("`{}` is in the trash", file.name)));
    }
    Ok(())
}

/// Runs a Drive call with the connection's access token; when Drive answers 401 the token is refreshed once
/// (single-flight per connection) and the call repeated. Returns the token that worked with the result.
pub(crate) async fn with_token_retry<T, F, Fut>(
    ctx: &TransferContext,
    connection_id: ConnectionId,
    call: F,
) -> Result<(String, T), ItemFailure>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, DriveError>>,
{
    let token = ctx.credentials.access_token(connection_id).await?;
    match call(token.clone()).await {
        Ok(value) => Ok((token, value)),
        Err(DriveError::Unauthorized) => {
            let token = ctx.credentials.refresh_after_rejection(connection_id, &token).await?;
            let value = call(token.clone()).await?;
            Ok((token, value))
        }
        Err(err) => Err(err.into()),
    }
}

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
    if metadata.is_google_workspace() && !metadata.trashed {
        return import_workspace_file(ctx, claimed, connection_id, &metadata).await;
    }
    check_importable(&metadata)?;
    let _slot = ctx.slots.acquire(metadata.size, &ctx.progress).await;

    let download = crate::resume::paced(ctx, connection_id, || ctx.drive.download(&token, drive_file_id, 0)).await?;
    // A cut download continues from the last byte received (Range) instead of starting over.
    let stream = crate::resume::resuming_download(
        ctx.clone(),
        connection_id,
        token.clone(),
        drive_file_id.to_owned(),
        download.stream,
    );
    let blob_key = blob_key_of(claimed);
    // The key is deterministic, so a retry after a crash overwrites the partial attempt instead of leaving a
    // second copy behind.
    let stored = store_verified(ctx, &blob_key, &metadata, stream).await?;
    let size_bytes = i64::try_from(stored.size)
        .map_err(|_| ItemFailure::permanent("file_too_large", "file size does not fit in 63 bits"))?;
    let finish = ctx
        .db
        .complete_import_item(
            &claimed.claim,
            ImportedBlob {
                rename_to: None,
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
    crate::observe::transfer_size(crate::worker::WorkerKind::Importer, stored.size);
    crate::observe::item_finished(&ctx.db, item.item_id(), &finish).await;
    Ok(())
}

/// Streams a binary file into `blob_key` and checks it against what Drive reported: the size, and the SHA-256
/// when Drive has one (each byte is then hashed once, and Drive's MD5 of the same bytes is kept), else the MD5.
async fn store_verified(
    ctx: &TransferContext,
    blob_key: &str,
    metadata: &DriveFile,
    stream: impl futures::Stream<Item = Result<bytes::Bytes, DriveError>>,
) -> Result<ferry_storage::StoredBlob, ItemFailure> {
    let source_failure = |err| match err {
        StorageError::Source { source, .. } => ItemFailure::from(source),
        other => ItemFailure::from(other),
    };
    let stored = match (metadata.sha256_checksum.as_deref(), metadata.md5_checksum.as_deref()) {
        (Some(sha256), Some(md5)) => {
            let stored = ctx.storage.put_stream_sha256(blob_key, stream).await.map_err(source_failure)?;
            if !sha256.eq_ignore_ascii_case(&stored.sha256_hex) {
                return Err(checksum_mismatch("SHA-256"));
            }
            ferry_storage::StoredBlob {
                size: stored.size,
                sha256_hex: stored.sha256_hex,
                md5_hex: md5.to_ascii_lowercase(),
            }
        }
        (_, md5) => {
            let stored = ctx.storage.put_stream(blob_key, stream).await.map_err(source_failure)?;
            if let Some(expected) = md5
                && !expected.eq_ignore_ascii_case(&stored.md5_hex)
            {
                return Err(checksum_mismatch("MD5"));
            }
            stored
        }
    };
    if let Some(size) = metadata.size
        && size != stored.size
    {
        return Err(ItemFailure::transient(
            "size_mismatch",
            format!("Drive reported {size} bytes but {} arrived", stored.size),
        ));
    }
    Ok(stored)
}

fn checksum_mismatch(algorithm: &str) -> ItemFailure {
    ItemFailure::transient("checksum_mismatch", format!("the downloaded bytes do not match Drive's {algorithm}"))
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

/// Where an item's bytes go. The key is deterministic, so a retry overwrites its own partial attempt; a sync
/// run's transfer may be a file's second version, so its key is the item's, never the file's first one.
fn blob_key_of(claimed: &ClaimedItem) -> String {
    if claimed.job.kind == ferry_core::JobKind::Sync {
        file_blob_key(&claimed.job.tenant_id, &claimed.item.id)
    } else {
        file_blob_key(&claimed.job.tenant_id, &claimed.item.file_id)
    }
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
    // Rate-limited and retried with backoff on 429 / rate-limit 403 / 5xx (crate::resume::paced).
    match crate::resume::paced(ctx, connection_id, || call(token.clone())).await {
        Ok(value) => Ok((token, value)),
        Err(DriveError::Unauthorized) => {
            let token = ctx.credentials.refresh_after_rejection(connection_id, &token).await?;
            let value = crate::resume::paced(ctx, connection_id, || call(token.clone())).await?;
            Ok((token, value))
        }
        Err(err) => Err(err.into()),
    }
}

/// The format a Google Workspace file is exported to on import when the request did not choose one.
fn default_export_format(workspace_mime: &str) -> Option<&'static str> {
    match workspace_mime.strip_prefix(ferry_drive::GOOGLE_APPS_MIME_PREFIX)? {
        "document" => Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "spreadsheet" => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "presentation" => Some("application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        "drawing" => Some("image/png"),
        _ => None,
    }
}

/// Google Workspace files have no bytes of their own: they are exported (Docs → docx, Sheets → xlsx,
/// Slides → pptx, Drawings → png unless the request chose otherwise) with files.export, and through the
/// file's `exportLinks` when Drive refuses an export over its 10 MB cap. Exports carry no size or MD5 to check.
async fn import_workspace_file(
    ctx: &TransferContext,
    claimed: &ClaimedItem,
    connection_id: ConnectionId,
    metadata: &DriveFile,
) -> Result<(), ItemFailure> {
    let item = &claimed.item;
    let chosen = ctx.db.import_export_format(ferry_core::FileId(item.file_id), &metadata.mime_type).await?;
    let target = chosen.as_deref().or_else(|| default_export_format(&metadata.mime_type)).ok_or_else(|| {
        ItemFailure::permanent(
            "not_importable",
            format!("`{}` is a Google Workspace file ({}) that cannot be exported", metadata.name, metadata.mime_type),
        )
    })?;
    let id = metadata.id.as_str();
    // An export's size is unknown until it arrives.
    let _slot = ctx.slots.acquire(None, &ctx.progress).await;
    let exported = with_token_retry(ctx, connection_id, |token| async move {
        match ctx.drive.export(&token, id, target).await {
            Err(DriveError::Forbidden { reason, .. }) if reason == "exportSizeLimitExceeded" => {
                ctx.drive.export_via_link(&token, id, target).await
            }
            other => other,
        }
    })
    .await;
    let (_, download) = exported?;
    let blob_key = blob_key_of(claimed);
    let progress = ctx.progress.clone();
    let exported_bytes = download.stream.inspect_ok(move |_| progress.touch());
    let stored = ctx.storage.put_stream(&blob_key, exported_bytes).await.map_err(|err| match err {
        StorageError::Source { source, .. } => ItemFailure::from(source),
        other => ItemFailure::from(other),
    })?;
    let size_bytes = i64::try_from(stored.size)
        .map_err(|_| ItemFailure::permanent("file_too_large", "file size does not fit in 63 bits"))?;
    let renamed = with_extension(&item.name, target);
    let finish = ctx
        .db
        .complete_import_item(
            &claimed.claim,
            ImportedBlob {
                rename_to: renamed.as_deref(),
                size_bytes,
                mime_type: target,
                sha256: &stored.sha256_hex,
                md5: &stored.md5_hex,
                blob_key: &blob_key,
            },
        )
        .await?;
    tracing::info!(item_id = %item.item_id(), bytes = stored.size, target, job_status = ?finish.job_status, "exported on import");
    metrics::counter!("ferry_import_bytes_total").increment(stored.size);
    crate::observe::transfer_size(crate::worker::WorkerKind::Importer, stored.size);
    crate::observe::item_finished(&ctx.db, item.item_id(), &finish).await;
    Ok(())
}

/// The file name with the extension of the format it was exported to (`Notes` → `Notes.docx`), or `None` when
/// it already ends with it, so a downloaded export opens in the right application.
fn with_extension(name: &str, mime_type: &str) -> Option<String> {
    let extension = match mime_type {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "application/vnd.oasis.opendocument.presentation" => "odp",
        "application/pdf" => "pdf",
        "application/rtf" => "rtf",
        "application/epub+zip" => "epub",
        "application/zip" => "zip",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "text/markdown" => "md",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/svg+xml" => "svg",
        _ => return None,
    };
    let already = name.rsplit_once('.').is_some_and(|(_, ext)| ext.eq_ignore_ascii_case(extension));
    (!already).then(|| format!("{name}.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::with_extension;

    #[test]
    fn exported_files_gain_their_formats_extension_once() {
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(with_extension("Quarterly report", docx).as_deref(), Some("Quarterly report.docx"));
        assert_eq!(with_extension("Notes.DOCX", docx), None);
        assert_eq!(with_extension("Budget", "application/pdf").as_deref(), Some("Budget.pdf"));
        assert_eq!(with_extension("v1.2", "text/csv").as_deref(), Some("v1.2.csv"));
        assert_eq!(with_extension("Odd", "application/x-unknown"), None);
    }
}

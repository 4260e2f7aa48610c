//! Export: upload one stored file to Drive with the resumable protocol, spoken directly so that an
//! interrupted upload resumes from the bytes Drive already holds (the session URI is persisted, sealed).

use bytes::Bytes;
use ferry_core::{ConnectionId, FileStatus, ItemId, JobId};
use ferry_db::jobs::ClaimedItem;
use ferry_drive::{DriveError, DriveFile, NewDriveFile, UploadProgress};
use futures::StreamExt;

use crate::import::with_token_retry;
use crate::outcome::ItemFailure;
use crate::worker::TransferContext;

fn session_associated_data(item_id: ItemId) -> Vec<u8> {
    ferry_crypto::binding::upload_session(&item_id)
}

pub(crate) async fn export_item(ctx: &TransferContext, claimed: &ClaimedItem) -> Result<(), ItemFailure> {
    let (job, item, file) = (&claimed.job, &claimed.item, &claimed.file);
    let connection_id = ConnectionId(job.connection_id);
    if file.status != FileStatus::Ready {
        return Err(ItemFailure::permanent("file_not_ready", format!("file `{}` has no content yet", file.name)));
    }
    let blob_key = file
        .blob_key
        .clone()
        .ok_or_else(|| ItemFailure::permanent("file_not_ready", format!("file `{}` has no content", file.name)))?;
    let total = u64::try_from(file.size_bytes.unwrap_or(0)).unwrap_or(0);

    // `folder_name` creates one folder per job (inside `folder_id` when both are given).
    let parents = match (&job.target_folder_name, &job.target_folder_id) {
        (Some(name), parent) => vec![
            ensure_job_folder(
                ctx,
                claimed,
                connection_id,
                JobId(job.id),
                job.created_folder_id.clone(),
                name,
                parent.as_deref(),
            )
            .await?,
        ],
        (None, Some(folder_id)) => vec![folder_id.clone()],
        (None, None) => Vec::new(),
    };

    // The Drive id is chosen once and stored before anything is created, so every retry targets the same file
    // and Drive answers 409 rather than creating a duplicate.
    let drive_file_id = match &item.drive_file_id {
        Some(id) => id.clone(),
        None => {
            let candidate = next_drive_id(ctx, connection_id).await?;
            ctx.db.set_item_drive_file_id(&claimed.claim, &candidate).await?
        }
    };

    let cipher = ctx.credentials.cipher();
    let aad = session_associated_data(item.item_id());
    let mut resumed = None;
    if let Some(sealed) = &item.upload_session_sealed {
        match cipher.open(sealed, &aad) {
            Ok(session) => {
                match crate::resume::paced(ctx, connection_id, || ctx.drive.upload_status(&session, total)).await {
                    Ok(UploadProgress::Complete(created)) => {
                        return finish(ctx, claimed, file.md5.as_deref(), created).await;
                    }
                    Ok(UploadProgress::Incomplete { committed }) => {
                        tracing::info!(item_id = %item.item_id(), committed, "resuming an interrupted upload");
                        resumed = Some((session, committed));
                    }
                    Err(DriveError::NotFound(_) | DriveError::SessionExpired) => {
                        tracing::info!(item_id = %item.item_id(), "upload session expired; starting a new one");
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            Err(err) => {
                tracing::warn!(item_id = %item.item_id(), error = %err, "stored upload session cannot be opened; starting over")
            }
        }
    }

    let (session, mut offset) = match resumed {
        Some(resumed) => resumed,
        None => {
            let metadata = &NewDriveFile {
                id: Some(drive_file_id.clone()),
                name: item.name.clone(),
                mime_type: file.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned()),
                parents,
            };
            let (_, started) = with_token_retry(ctx, connection_id, |token| async move {
                match ctx.drive.start_resumable_upload(&token, metadata, total).await {
                    Ok(session) => Ok(Some(session)),
                    Err(DriveError::AlreadyExists) => Ok(None),
                    Err(err) => Err(err),
                }
            })
            .await?;
            match started {
                Some(session) => {
                    let sealed = cipher
                        .seal(&session, &aad)
                        .map_err(|err| ItemFailure::permanent("credentials_invalid", err.to_string()))?;
                    ctx.db.set_item_upload_session(&claimed.claim, Some(&sealed)).await?;
                    (session, 0)
                }
                None => {
                    // An earlier attempt finished the upload but died before recording it.
                    let drive_file_id = drive_file_id.as_str();
                    let (_, existing) = with_token_retry(ctx, connection_id, |token| async move {
                        ctx.drive.get_file(&token, drive_file_id).await
                    })
                    .await?;
                    return finish(ctx, claimed, file.md5.as_deref(), existing).await;
                }
            }
        }
    };

    // One streaming PUT of everything Drive does not hold yet. After an interruption Drive is asked what it
    // committed and the rest is streamed from the store again: nothing is buffered to be resent.
    let _slot = ctx.slots.acquire(Some(total.saturating_sub(offset)), &ctx.progress).await;
    let mut interruptions = 0;
    loop {
        ctx.pacer.acquire(connection_id).await;
        let uploaded = if total == 0 {
            ctx.drive.upload_chunk(&session, 0, Bytes::new(), 0).await
        } else {
            let read = ctx.storage.get_stream(&blob_key, Some(offset..total)).await?;
            let progress = ctx.progress.clone();
            let body = read.stream.inspect(move |_| progress.touch()).boxed();
            ctx.drive.upload_stream(&session, offset, total, body).await
        };
        ctx.progress.touch();
        if let Err(DriveError::RateLimited { retry_after, .. }) = &uploaded {
            ctx.pacer.refused(connection_id, *retry_after).await;
        }
        let progress = match uploaded {
            Ok(progress) => progress,
            Err(err) if err.is_retryable() && interruptions < crate::resume::CALL_RETRIES => {
                let delay = crate::limits::call_retry_delay(interruptions);
                interruptions += 1;
                tracing::info!(error = %err, offset, ?delay, "upload interrupted; asking Drive what it holds");
                metrics::counter!("ferry_export_upload_resumes_total").increment(1);
                tokio::time::sleep(delay).await;
                crate::resume::paced(ctx, connection_id, || ctx.drive.upload_status(&session, total)).await?
            }
            Err(err) => return Err(err.into()),
        };
        match progress {
            UploadProgress::Complete(created) => {
                metrics::counter!("ferry_export_bytes_total").increment(total);
                crate::observe::transfer_size(crate::worker::WorkerKind::Exporter, total);
                return finish(ctx, claimed, file.md5.as_deref(), created).await;
            }
            UploadProgress::Incomplete { committed } if committed < total => offset = committed,
            UploadProgress::Incomplete { committed } => {
                return Err(ItemFailure::transient(
                    "upload_incomplete",
                    format!("Drive holds {committed} of {total} bytes but did not finish the upload"),
                ));
            }
        }
    }
}

/// The Drive folder created for this job (`folder_name`): its id is chosen once per job, and creating it again
/// with that id answers 409, so concurrent workers end up with exactly one folder.
async fn ensure_job_folder(
    ctx: &TransferContext,
    claimed: &ClaimedItem,
    connection_id: ConnectionId,
    job_id: JobId,
    known: Option<String>,
    name: &str,
    parent: Option<&str>,
) -> Result<String, ItemFailure> {
    let folder_id = match known {
        Some(id) => id,
        None => {
            let candidate = next_drive_id(ctx, connection_id).await?;
            ctx.db.claim_job_folder(&claimed.claim, job_id, &candidate).await?
        }
    };
    // One item per process creates the folder (the others of the job wait for it); once it exists, the rest
    // need no Drive call for it. A failed or cancelled creation leaves the next item to try again.
    let id = folder_id.as_str();
    ctx.export_ahead
        .folder(id)
        .get_or_try_init(|| async move {
            with_token_retry(ctx, connection_id, |token| async move {
                match ctx.drive.create_folder(&token, Some(id), name, parent).await {
                    Ok(_) | Err(DriveError::AlreadyExists) => Ok(()),
                    Err(err) => Err(err),
                }
            })
            .await
            .map(|_| ())
        })
        .await?;
    Ok(folder_id)
}

/// How many Drive ids one `files.generateIds` call asks for (Drive allows up to 1000).
const DRIVE_ID_BATCH: u32 = 100;

/// What exports of one process learn once instead of once per item: Drive ids generated ahead (per connection,
/// since an id may only be used by the user it was generated for) and the job folders known to exist. Cheap to
/// clone; clones share it. An id is handed out once and stored on its item before use, so none is used twice;
/// ids left over when the process ends are simply never used.
#[derive(Clone, Default)]
pub struct ExportAhead {
    inner: std::sync::Arc<std::sync::Mutex<AheadState>>,
}

#[derive(Default)]
struct AheadState {
    /// Behind an async lock, so one item fetches a batch while the others of that connection wait for it.
    ids: std::collections::HashMap<ConnectionId, std::sync::Arc<tokio::sync::Mutex<Vec<String>>>>,
    /// Set once the folder is known to exist in Drive.
    folders: std::collections::HashMap<String, std::sync::Arc<tokio::sync::OnceCell<()>>>,
}

/// Folders remembered at most; past it the set starts over (a forgotten folder costs one more 409).
const MAX_KNOWN_FOLDERS: usize = 10_000;

impl ExportAhead {
    fn state(&self) -> std::sync::MutexGuard<'_, AheadState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ids(&self, connection: ConnectionId) -> std::sync::Arc<tokio::sync::Mutex<Vec<String>>> {
        self.state().ids.entry(connection).or_default().clone()
    }

    fn folder(&self, folder_id: &str) -> std::sync::Arc<tokio::sync::OnceCell<()>> {
        let mut state = self.state();
        if state.folders.len() >= MAX_KNOWN_FOLDERS && !state.folders.contains_key(folder_id) {
            state.folders.clear();
        }
        state.folders.entry(folder_id.to_owned()).or_default().clone()
    }
}

/// A Drive id for a new file or folder: from the ids generated ahead for this connection, else a new batch.
async fn next_drive_id(ctx: &TransferContext, connection_id: ConnectionId) -> Result<String, ItemFailure> {
    let pool = ctx.export_ahead.ids(connection_id);
    let mut ids = pool.lock().await;
    if ids.is_empty() {
        let generate = |token: String| async move { ctx.drive.generate_ids(&token, DRIVE_ID_BATCH).await };
        *ids = with_token_retry(ctx, connection_id, generate).await?.1;
    }
    ids.pop().ok_or_else(|| ItemFailure::transient("drive_error", "Drive returned no ids"))
}

async fn finish(
    ctx: &TransferContext,
    claimed: &ClaimedItem,
    expected_md5: Option<&str>,
    created: DriveFile,
) -> Result<(), ItemFailure> {
    let item_id = claimed.claim.item_id;
    if let (Some(expected), Some(actual)) = (expected_md5, created.md5_checksum.as_deref())
        && !expected.eq_ignore_ascii_case(actual)
    {
        return Err(ItemFailure::permanent(
            "checksum_mismatch",
            format!("Drive file {} does not match the stored file's MD5", created.id),
        ));
    }
    let finish = ctx.db.complete_export_item(&claimed.claim, &created.id).await?;
    crate::observe::item_finished(&ctx.db, item_id, &finish).await;
    tracing::info!(%item_id, drive_file_id = %created.id, job_status = ?finish.job_status, "exported");
    Ok(())
}

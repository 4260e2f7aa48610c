//! Image versions are described after they are stored: dimensions and EXIF facts recorded with the version,
//! thumbnails at each of [`ferry_storage::THUMBNAIL_SIZES`] stored beside the bytes. Hostile images are refused
//! with a recorded reason; decoding runs on the blocking pool under the imaging crate's limits.

use std::time::Duration;

use ferry_core::{FileId, TenantId};
use ferry_db::versions::{Described, ImageDescription, ImageFactsRecord, ThumbnailRecord};
use ferry_queue::Outcome;
use futures::TryStreamExt;
use uuid::Uuid;

use crate::store_tasks::retry_or_give_up;
use crate::worker::TransferContext;

/// Reading a version's bytes for description gives up after this long without finishing.
const READ_DEADLINE: Duration = Duration::from_secs(120);

pub async fn describe_version(
    ctx: &TransferContext,
    tenant: TenantId,
    file_id: &str,
    version_id: &str,
    retries: u32,
) -> Outcome {
    let (Ok(file_id), Ok(version_id)) = (Uuid::parse_str(file_id), Uuid::parse_str(version_id)) else {
        tracing::error!(file_id, version_id, "dead-lettering a description task with invalid ids");
        return Outcome::Reject;
    };
    let db = ctx.db.tenant(tenant);
    let version = match db.get_version(FileId(file_id), version_id).await {
        Ok(Some(version)) => version,
        // Deleted before its turn: nothing to describe.
        Ok(None) => return Outcome::Ack,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the version to describe; retrying later");
            return retry_or_give_up(retries);
        }
    };
    if version.described_at.is_some() {
        return Outcome::Ack;
    }
    let limits = ferry_imaging::Limits::default();
    let description = if u64::try_from(version.size_bytes).unwrap_or(u64::MAX) > limits.max_input_bytes {
        let refusal = ferry_imaging::Refusal::InputTooLarge {
            bytes: u64::try_from(version.size_bytes).unwrap_or(u64::MAX),
            limit: limits.max_input_bytes,
        };
        ImageDescription::Refused { reason: format!("{}: {refusal}", refusal.code()) }
    } else {
        let bytes = match tokio::time::timeout(READ_DEADLINE, read_all(ctx, &version.blob_key)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot read the version's bytes; retrying later");
                return retry_or_give_up(retries);
            }
            Err(_) => {
                tracing::warn!("reading the version's bytes stalled; retrying later");
                return retry_or_give_up(retries);
            }
        };
        let made = tokio::task::spawn_blocking(move || describe_bytes(&bytes, &limits)).await;
        let (description, thumbnails) = match made {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(error = %err, "describing an image failed unexpectedly");
                (ImageDescription::Refused { reason: "corrupt: the image could not be decoded".to_owned() }, Vec::new())
            }
        };
        for (size, bytes) in thumbnails {
            let key = ferry_storage::thumbnail_key(&version.blob_key, size);
            let body = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)) });
            if let Err(err) = ctx.storage.put_stream(&key, body).await {
                tracing::warn!(error = %err, "cannot store a thumbnail; retrying later");
                return retry_or_give_up(retries);
            }
        }
        description
    };
    match db.record_image_description(version_id, &version.blob_key, &description).await {
        Ok(Described::Recorded) => {
            metrics::counter!("ferry_store_tasks_total", "task" => "describe_version", "outcome" => "recorded")
                .increment(1);
            Outcome::Ack
        }
        Ok(Described::VersionGone { bytes_unused }) => {
            if bytes_unused {
                for key in ferry_storage::thumbnail_keys(&version.blob_key) {
                    let _ = ctx.storage.delete(&key).await;
                }
            }
            Outcome::Ack
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot record the description; retrying later");
            retry_or_give_up(retries)
        }
    }
}

async fn read_all(ctx: &TransferContext, blob_key: &str) -> Result<Vec<u8>, ferry_storage::StorageError> {
    let read = ctx.storage.get_stream(blob_key, None).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(read.size).unwrap_or(0));
    let mut stream = read.stream;
    while let Some(chunk) = stream.try_next().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The description and the thumbnails (by longest side) of an image's bytes.
fn describe_bytes(bytes: &[u8], limits: &ferry_imaging::Limits) -> (ImageDescription, Vec<(u32, Vec<u8>)>) {
    let refused = |refusal: ferry_imaging::Refusal| ImageDescription::Refused {
        reason: format!("{}: {refusal}", refusal.code()),
    };
    let facts = match ferry_imaging::describe(bytes, limits) {
        Ok(facts) => facts,
        Err(refusal) => return (refused(refusal), Vec::new()),
    };
    let mut stored = Vec::new();
    let mut thumbnails = Vec::new();
    for (index, size) in ferry_storage::THUMBNAIL_SIZES.iter().enumerate() {
        match ferry_imaging::thumbnail(bytes, *size, limits) {
            Ok(thumb) => {
                stored.push(ThumbnailRecord {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    id: format!("{size}"),
                    kind: thumb.mime.to_owned(),
                    size: i64::try_from(thumb.bytes.len()).unwrap_or(i64::MAX),
                    width: thumb.width,
                    height: thumb.height,
                    longest_side: *size,
                });
                thumbnails.push((*size, thumb.bytes));
            }
            Err(refusal) => return (refused(refusal), Vec::new()),
        }
    }
    let image = ImageFactsRecord {
        format: facts.format.mime().to_owned(),
        width: facts.width,
        height: facts.height,
        taken_at: facts.taken_at,
        camera_make: facts.camera_make,
        camera_model: facts.camera_model,
        orientation: facts.orientation,
    };
    (ImageDescription::Facts { image, thumbnails: stored }, thumbnails)
}

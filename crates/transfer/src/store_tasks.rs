//! Store tasks: upkeep of Ferry's own store that must not run inside an API request. Each task re-reads
//! Postgres before acting, so a duplicate, late or retried message does nothing harmful.

use ferry_core::TenantId;
use ferry_db::blobs::BlobRemoval;
use ferry_messages::v1::store_task::Task;
use ferry_queue::{Delivery, Outcome};
use uuid::Uuid;

use crate::worker::TransferContext;

/// A store task retried this many times through the delay tiers is dead-lettered (and logged) instead.
pub(crate) const MAX_STORE_TASK_RETRIES: u32 = 10;

/// Retry later, or give up on a task that has failed too often.
pub(crate) fn retry_or_give_up(retries: u32) -> Outcome {
    if retries >= MAX_STORE_TASK_RETRIES {
        tracing::error!(retries, "giving up on a store task; dead-lettering it");
        Outcome::Reject
    } else {
        Outcome::Retry(crate::limits::item_retry_delay(retries + 1))
    }
}

/// Handles one store task and says how to settle it.
pub async fn handle_store_task(ctx: &TransferContext, delivery: Delivery) -> Outcome {
    let message = match ferry_messages::decode_store_task(&delivery.payload) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(error = %err, message_id = ?delivery.message_id, "dead-lettering an undecodable store task");
            return Outcome::Reject;
        }
    };
    let Ok(tenant) = Uuid::parse_str(&message.tenant_id).map(TenantId) else {
        tracing::error!(tenant_id = %message.tenant_id, "dead-lettering a store task with an invalid tenant id");
        return Outcome::Reject;
    };
    match message.task {
        Some(Task::RemoveBlob(remove)) => remove_blob(ctx, tenant, &remove.blob_key, delivery.retries).await,
        Some(Task::DescribeVersion(describe)) => {
            crate::describe::describe_version(ctx, tenant, &describe.file_id, &describe.version_id, delivery.retries)
                .await
        }
        None => {
            tracing::error!("dead-lettering a store task that names no task");
            Outcome::Reject
        }
    }
}

/// Removes a blob once no version uses it. A key outside the tenant's part of the store is refused: a task
/// can only ever remove its own tenant's bytes.
async fn remove_blob(ctx: &TransferContext, tenant: TenantId, blob_key: &str, retries: u32) -> Outcome {
    let own_prefix = format!("tenants/{}/files/", tenant.0);
    if !blob_key.starts_with(&own_prefix) || blob_key.contains("..") {
        tracing::error!(blob_key, "dead-lettering a removal of a key outside the tenant's files");
        return Outcome::Reject;
    }
    let storage = ctx.storage.clone();
    let removed = ctx
        .db
        .remove_blob_if_unused(blob_key, || async move {
            storage.delete(blob_key).await?;
            // Thumbnails are made from these bytes and go with them.
            for key in ferry_storage::thumbnail_keys(blob_key) {
                storage.delete(&key).await?;
            }
            Ok::<(), ferry_storage::StorageError>(())
        })
        .await;
    match removed {
        Ok(BlobRemoval::Removed) => {
            tracing::info!(blob_key, "removed unused stored bytes");
            metrics::counter!("ferry_store_tasks_total", "task" => "remove_blob", "outcome" => "removed").increment(1);
            Outcome::Ack
        }
        Ok(BlobRemoval::StillUsed) => {
            tracing::info!(blob_key, "stored bytes still used by a version; kept");
            metrics::counter!("ferry_store_tasks_total", "task" => "remove_blob", "outcome" => "kept").increment(1);
            Outcome::Ack
        }
        Ok(BlobRemoval::Failed(err)) => {
            tracing::warn!(blob_key, error = %err, "cannot remove stored bytes; retrying later");
            retry_or_give_up(retries)
        }
        Err(err) => {
            tracing::warn!(blob_key, error = %err, "cannot check whether stored bytes are used; retrying later");
            retry_or_give_up(retries)
        }
    }
}

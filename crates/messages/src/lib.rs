//! Queue message types generated from `proto/ferry/v1/*.proto`, with helpers to encode and decode them.
//! Knows neither the database nor the broker.

pub mod v1 {
    #![allow(clippy::doc_markdown)]
    include!(concat!(env!("OUT_DIR"), "/ferry.v1.rs"));
}

pub use prost::Message;

/// The routing key of [`StoreTask`] messages (the queue crate's `CommandKind::StoreTask`): the database writes
/// store tasks into the outbox in the transaction that makes them necessary.
pub const STORE_TASK_COMMAND: &str = "store.task";
/// The routing key of [`SyncRun`] messages (the queue crate's `CommandKind::SyncRun`).
pub const SYNC_RUN_COMMAND: &str = "sync.run";
pub use v1::{DescribeVersion, ExportItem, ImportItem, RemoveBlob, StoreTask, SyncRun};

/// A payload that is not a valid message of the expected type: such a message can never succeed.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {kind} message: {source}")]
pub struct DecodeError {
    pub kind: &'static str,
    #[source]
    pub source: prost::DecodeError,
}

pub fn decode_import(payload: &[u8]) -> Result<ImportItem, DecodeError> {
    ImportItem::decode(payload).map_err(|source| DecodeError { kind: "ImportItem", source })
}

pub fn decode_export(payload: &[u8]) -> Result<ExportItem, DecodeError> {
    ExportItem::decode(payload).map_err(|source| DecodeError { kind: "ExportItem", source })
}

pub fn decode_store_task(payload: &[u8]) -> Result<StoreTask, DecodeError> {
    StoreTask::decode(payload).map_err(|source| DecodeError { kind: "StoreTask", source })
}

pub fn decode_sync_run(payload: &[u8]) -> Result<SyncRun, DecodeError> {
    SyncRun::decode(payload).map_err(|source| DecodeError { kind: "SyncRun", source })
}

/// A store task that removes `blob_key` of `tenant_id` once nothing uses it.
pub fn remove_blob(tenant_id: &str, blob_key: &str) -> StoreTask {
    StoreTask {
        tenant_id: tenant_id.to_owned(),
        task: Some(v1::store_task::Task::RemoveBlob(RemoveBlob { blob_key: blob_key.to_owned() })),
        traceparent: String::new(),
    }
}

/// A store task that describes an image version (dimensions, EXIF, thumbnails).
pub fn describe_version(tenant_id: &str, file_id: &str, version_id: &str) -> StoreTask {
    StoreTask {
        tenant_id: tenant_id.to_owned(),
        task: Some(v1::store_task::Task::DescribeVersion(DescribeVersion {
            file_id: file_id.to_owned(),
            version_id: version_id.to_owned(),
        })),
        traceparent: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_items_round_trip() {
        let message =
            ImportItem { job_id: "j".into(), item_id: "i".into(), tenant_id: "t".into(), traceparent: String::new() };
        let bytes = message.encode_to_vec();
        assert_eq!(decode_import(&bytes).expect("decodes"), message);
    }

    #[test]
    fn store_tasks_round_trip() {
        let message = remove_blob("t", "tenants/t/files/f");
        assert_eq!(decode_store_task(&message.encode_to_vec()).expect("decodes"), message);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = decode_import(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.to_string().starts_with("undecodable ImportItem message"));
    }
}

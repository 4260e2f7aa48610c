//! Queue message types generated from `proto/ferry/v1/*.proto`, with helpers to encode and decode them.
//! Knows neither the database nor the broker.

pub mod v1 {
    #![allow(clippy::doc_markdown)]
    include!(concat!(env!("OUT_DIR"), "/ferry.v1.rs"));
}

pub use prost::Message;
pub use v1::{ExportItem, ImportItem};

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
    fn garbage_is_a_decode_error() {
        let err = decode_import(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.to_string().starts_with("undecodable ImportItem message"));
    }
}

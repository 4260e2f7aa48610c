//! How an item attempt can end badly, and what the worker does about each.

use ferry_credentials::CredentialError;
use ferry_db::DbError;
use ferry_drive::DriveError;
use ferry_storage::StorageError;

/// Why an attempt did not finish the item.
#[derive(Debug, thiserror::Error)]
pub enum ItemFailure {
    /// May work later: release the item and let the message come back.
    #[error("transient: {code}: {message}")]
    Transient { code: &'static str, message: String },
    /// Will never work: fail the item with this code and message (shown to API clients).
    #[error("permanent: {code}: {message}")]
    Permanent { code: &'static str, message: String },
    /// The account's access was revoked: fail every open item of the connection.
    #[error("connection needs re-authorisation")]
    NeedsReauthorization,
    /// Another worker holds the item now (this attempt outlived its lease): drop the result, change nothing.
    #[error("the item's lease was lost to another worker")]
    LeaseLost,
}

impl ItemFailure {
    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        ItemFailure::Transient { code, message: message.into() }
    }

    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        ItemFailure::Permanent { code, message: message.into() }
    }
}

impl From<DriveError> for ItemFailure {
    fn from(err: DriveError) -> Self {
        let message = err.to_string();
        if err.is_retryable() || matches!(err, DriveError::Unauthorized) {
            ItemFailure::Transient { code: err.code(), message }
        } else {
            ItemFailure::Permanent { code: err.code(), message }
        }
    }
}

impl From<CredentialError> for ItemFailure {
    fn from(err: CredentialError) -> Self {
        match err {
            CredentialError::NeedsReauthorization => ItemFailure::NeedsReauthorization,
            CredentialError::Disconnected | CredentialError::NotFound => {
                ItemFailure::permanent("connection_disconnected", "the cloud connection was disconnected")
            }
            other if other.is_transient() => ItemFailure::transient("token_refresh_failed", other.to_string()),
            other => ItemFailure::permanent("credentials_invalid", other.to_string()),
        }
    }
}

impl From<DbError> for ItemFailure {
    fn from(err: DbError) -> Self {
        match err {
            DbError::LeaseLost { .. } => ItemFailure::LeaseLost,
            err if err.is_transient() => ItemFailure::transient("database_unavailable", err.to_string()),
            err => ItemFailure::permanent("item_corrupt", err.to_string()),
        }
    }
}

impl<E: std::fmt::Display> From<StorageError<E>> for ItemFailure {
    fn from(err: StorageError<E>) -> Self {
        match err {
            // The stored bytes are gone: no retry brings them back.
            StorageError::NotFound { key } => {
                ItemFailure::permanent("file_missing", format!("the stored content {key:?} no longer exists"))
            }
            err => ItemFailure::transient("storage_error", err.to_string()),
        }
    }
}

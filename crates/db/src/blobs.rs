//! Stored bytes outlive their rows only briefly: a deletion commits, its store task reaches a worker, and the
//! worker removes the bytes unless a version still uses them (versions may share bytes). Removal and anything
//! that starts sharing bytes take the same per-blob lock, so neither can miss the other.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{file_versions, files};
use crate::{Db, DbError};

/// What a removal task did.
#[derive(Debug)]
pub enum BlobRemoval<E> {
    Removed,
    /// A version or file still uses the bytes: they stay.
    StillUsed,
    /// The store refused; the task should run again later.
    Failed(E),
}

impl Db {
    /// Runs `remove` for `blob_key` when no version and no file row uses it, holding the blob's lock while it
    /// runs (the store's own timeouts bound it).
    pub async fn remove_blob_if_unused<E, F, Fut>(&self, blob_key: &str, remove: F) -> Result<BlobRemoval<E>, DbError>
    where
        E: Send,
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = Result<(), E>> + Send,
    {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            crate::versions::lock_blob(conn, blob_key).await?;
            let version: Option<Uuid> = file_versions::table
                .filter(file_versions::blob_key.eq(blob_key))
                .select(file_versions::id)
                .first(conn)
                .await
                .optional()?;
            let file: Option<Uuid> =
                files::table.filter(files::blob_key.eq(blob_key)).select(files::id).first(conn).await.optional()?;
            if version.is_some() || file.is_some() {
                return Ok(BlobRemoval::StillUsed);
            }
            Ok(match remove().await {
                Ok(()) => BlobRemoval::Removed,
                Err(err) => BlobRemoval::Failed(err),
            })
        })
        .await
    }
}

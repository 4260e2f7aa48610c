//! Files in Ferry's store.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ferry_core::{FileId, FileStatus, VersionProvider};
use uuid::Uuid;

use crate::schema::files;
use crate::versions::{NewVersion, insert_version};
use crate::words::Word;
use crate::{DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct StoredFile {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub blob_key: Option<String>,
    #[diesel(deserialize_as = Word<FileStatus>)]
    pub status: FileStatus,
    pub folder_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub source_connection_id: Option<Uuid>,
    pub source_file_id: Option<String>,
    /// The import job that created this file (its `provider_metadata` is the file's).
    pub import_job_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The version whose bytes `blob_key` names (none while an import has not delivered any).
    pub last_version_id: Option<Uuid>,
    pub description: String,
    /// Set while the file is in the trash.
    pub trashed_at: Option<DateTime<Utc>>,
    /// The item's share settings (`public` link), as the documents API stores them.
    pub access_info: Option<serde_json::Value>,
}

impl StoredFile {
    pub fn file_id(&self) -> FileId {
        FileId(self.id)
    }
}

/// A file whose bytes are already in the blob store (a direct upload).
#[derive(Debug, Clone)]
pub struct NewUploadedFile<'a> {
    pub id: FileId,
    pub name: &'a str,
    pub mime_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub md5: &'a str,
    pub blob_key: &'a str,
    pub tags: &'a [String],
    /// The directory it goes in (`None`: the top level); the caller has checked it.
    pub folder_id: Option<uuid::Uuid>,
    pub description: &'a str,
    /// Share settings to start with (`None`: not shared).
    pub access_info: Option<&'a serde_json::Value>,
}

impl TenantDb {
    /// Records an uploaded file of this tenant with its first version, in one transaction.
    pub async fn insert_uploaded_file(&self, new: NewUploadedFile<'_>) -> Result<StoredFile, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            diesel::insert_into(files::table)
                .values((
                    files::id.eq(new.id.0),
                    files::tenant_id.eq(tenant.0),
                    files::name.eq(new.name),
                    files::mime_type.eq(new.mime_type),
                    files::status.eq(FileStatus::Pending.as_str()),
                    files::tags.eq(new.tags),
                    files::folder_id.eq(new.folder_id),
                    files::description.eq(new.description),
                    files::access_info.eq(new.access_info),
                ))
                .execute(conn)
                .await?;
            let version = NewVersion {
                id: uuid::Uuid::now_v7(),
                provider: VersionProvider::Internal,
                blob_key: new.blob_key,
                name: new.name,
                mime_type: Some(new.mime_type),
                size_bytes: new.size_bytes,
                sha256: Some(new.sha256),
                md5: Some(new.md5),
                external_id: None,
                creator_id: None,
                application_id: None,
            };
            insert_version(conn, tenant, new.id.0, &version)
                .await?
                .ok_or_else(|| DbError::Corrupt("an uploaded file vanished inside its own transaction".into()))?;
            Ok(files::table.find(new.id.0).select(StoredFile::as_select()).first(conn).await?)
        })
        .await
    }

    /// A file of this tenant (another tenant's id is simply not found).
    pub async fn get_file(&self, id: FileId) -> Result<Option<StoredFile>, DbError> {
        let mut conn = self.conn().await?;
        Ok(files::table
            .filter(files::id.eq(id.0))
            .filter(files::tenant_id.eq(self.tenant.0))
            .select(StoredFile::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// The tenant's files among `ids` (missing or foreign ids are simply absent from the result).
    pub async fn get_files(&self, ids: &[FileId]) -> Result<Vec<StoredFile>, DbError> {
        let mut conn = self.conn().await?;
        let raw: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        Ok(files::table
            .filter(files::id.eq_any(raw))
            .filter(files::tenant_id.eq(self.tenant.0))
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Newest first.
    pub async fn list_files(&self, limit: i64, offset: i64) -> Result<(Vec<StoredFile>, i64), DbError> {
        let mut conn = self.conn().await?;
        let total: i64 = files::table.filter(files::tenant_id.eq(self.tenant.0)).count().get_result(&mut conn).await?;
        let rows = files::table
            .filter(files::tenant_id.eq(self.tenant.0))
            .order((files::created_at.desc(), files::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }
}

//! File versions: every file item's content is its latest version. A new version and the file row's cache of
//! it (`blob_key`, `size_bytes`, `sha256`, `md5`, `mime_type`, `last_version_id`, `updated_at`) are written in one
//! transaction with the file row locked, so readers never see a file whose cache names another version.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ferry_core::{FileId, FileStatus, TenantId, VersionProvider};
use uuid::Uuid;

use crate::clock::db_now;
use crate::schema::{file_versions, files};
use crate::words::Word;
use crate::{DbError, TenantDb};

/// One stored version of a file.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = file_versions)]
pub struct FileVersion {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub file_id: Uuid,
    #[diesel(deserialize_as = Word<VersionProvider>)]
    pub provider: VersionProvider,
    pub blob_key: String,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    /// Where the bytes came from: `internal` or `drive`.
    pub source: String,
    /// The Drive file id of an imported version.
    pub external_id: Option<String>,
    pub thumbnails: serde_json::Value,
    pub creator_id: Option<String>,
    pub application_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A version about to be stored; its bytes are already in the blob store under `blob_key`.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub id: Uuid,
    pub provider: VersionProvider,
    pub blob_key: &'a str,
    pub name: &'a str,
    pub mime_type: Option<&'a str>,
    pub size_bytes: i64,
    pub sha256: Option<&'a str>,
    pub md5: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub creator_id: Option<&'a str>,
    pub application_id: Option<&'a str>,
}

/// Adds `new` to the tenant's file `file_id` and points the file's cache at it, with the file row locked for the
/// transaction `conn` is in. `None` when the tenant has no such file.
pub(crate) async fn insert_version(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    file_id: Uuid,
    new: &NewVersion<'_>,
) -> Result<Option<FileVersion>, DbError> {
    let locked: Option<Uuid> = files::table
        .filter(files::id.eq(file_id))
        .filter(files::tenant_id.eq(tenant.0))
        .select(files::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(None);
    }
    let version = diesel::insert_into(file_versions::table)
        .values((
            file_versions::id.eq(new.id),
            file_versions::tenant_id.eq(tenant.0),
            file_versions::file_id.eq(file_id),
            file_versions::provider.eq(new.provider.as_str()),
            file_versions::blob_key.eq(new.blob_key),
            file_versions::name.eq(new.name),
            file_versions::mime_type.eq(new.mime_type),
            file_versions::size_bytes.eq(new.size_bytes),
            file_versions::sha256.eq(new.sha256),
            file_versions::md5.eq(new.md5),
            file_versions::source.eq(new.provider.as_str()),
            file_versions::external_id.eq(new.external_id),
            file_versions::creator_id.eq(new.creator_id),
            file_versions::application_id.eq(new.application_id),
            file_versions::created_at.eq(db_now()),
        ))
        .returning(FileVersion::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(files::table.find(file_id))
        .set((
            files::status.eq(FileStatus::Ready.as_str()),
            files::blob_key.eq(new.blob_key),
            files::size_bytes.eq(new.size_bytes),
            files::sha256.eq(new.sha256),
            files::md5.eq(new.md5),
            files::mime_type.eq(new.mime_type),
            files::last_version_id.eq(version.id),
            files::error_code.eq(None::<String>),
            files::error_message.eq(None::<String>),
            files::updated_at.eq(db_now()),
        ))
        .execute(conn)
        .await?;
    Ok(Some(version))
}

impl TenantDb {
    /// Stores a new version of one of this tenant's files and makes it the file's content. `None` when the
    /// tenant has no such file.
    pub async fn add_version(&self, file_id: FileId, new: NewVersion<'_>) -> Result<Option<FileVersion>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| insert_version(conn, tenant, file_id.0, &new).await).await
    }

    /// The versions of one of this tenant's files, newest first (empty for another tenant's file).
    pub async fn list_versions(&self, file_id: FileId) -> Result<Vec<FileVersion>, DbError> {
        let mut conn = self.conn().await?;
        Ok(file_versions::table
            .filter(file_versions::file_id.eq(file_id.0))
            .filter(file_versions::tenant_id.eq(self.tenant.0))
            .order((file_versions::created_at.desc(), file_versions::id.desc()))
            .select(FileVersion::as_select())
            .load(&mut conn)
            .await?)
    }

    /// One version of one of this tenant's files.
    pub async fn get_version(&self, file_id: FileId, version_id: Uuid) -> Result<Option<FileVersion>, DbError> {
        let mut conn = self.conn().await?;
        Ok(file_versions::table
            .filter(file_versions::id.eq(version_id))
            .filter(file_versions::file_id.eq(file_id.0))
            .filter(file_versions::tenant_id.eq(self.tenant.0))
            .select(FileVersion::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// These versions of this tenant's files (ids it does not have are left out), for listing many files at once.
    pub async fn versions_by_ids(&self, ids: &[Uuid]) -> Result<Vec<FileVersion>, DbError> {
        let mut conn = self.conn().await?;
        Ok(file_versions::table
            .filter(file_versions::id.eq_any(ids))
            .filter(file_versions::tenant_id.eq(self.tenant.0))
            .select(FileVersion::as_select())
            .load(&mut conn)
            .await?)
    }
}

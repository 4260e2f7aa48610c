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
    /// What the image worker read from the bytes (dimensions, EXIF), once it has.
    pub image: Option<serde_json::Value>,
    /// Why the image worker refused the bytes (`code: message`), when it did.
    pub image_refusal: Option<String>,
    pub described_at: Option<DateTime<Utc>>,
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

/// What adding a version that shares stored bytes did.
#[derive(Debug, Clone)]
pub enum SharedVersion {
    Added(Box<FileVersion>),
    NoSuchFile,
    /// No version of the tenant uses those bytes (never stored, or already removed).
    UnknownContent,
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
    if is_image(new.mime_type, new.name) {
        // Described by a worker after the commit, never inside the request that stored it.
        let task =
            ferry_messages::describe_version(&tenant.0.to_string(), &file_id.to_string(), &version.id.to_string());
        crate::outbox::insert_store_tasks(conn, vec![task]).await?;
    }
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

/// Image types the image worker describes (by type, else by name).
fn is_image(mime: Option<&str>, name: &str) -> bool {
    const TYPES: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/jpg"];
    const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "jfif"];
    match mime.map(|m| m.trim().to_ascii_lowercase()) {
        Some(m) if TYPES.contains(&m.as_str()) => true,
        Some(m) if m != "application/octet-stream" && !m.is_empty() => false,
        _ => name.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())),
    }
}

/// Serializes everything that decides whether stored bytes are still used (a removal, a version naming existing
/// bytes) for one blob key, for the rest of the transaction.
pub(crate) async fn lock_blob(conn: &mut AsyncPgConnection, blob_key: &str) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('ferry.blob.' || $1, 0))")
        .bind::<diesel::sql_types::Text, _>(blob_key)
        .execute(conn)
        .await?;
    Ok(())
}

impl TenantDb {
    /// Stores a new version whose bytes are already stored under another version of this tenant (`new.blob_key`):
    /// the two share them, and a removal of those bytes waits until no version uses them.
    pub async fn add_version_sharing(&self, file_id: FileId, new: NewVersion<'_>) -> Result<SharedVersion, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            // Under the blob's lock, a removal either ran before (then no version uses the key and this fails)
            // or waits for this commit (then it sees the new version and keeps the bytes).
            lock_blob(conn, new.blob_key).await?;
            let used: Option<Uuid> = file_versions::table
                .filter(file_versions::tenant_id.eq(tenant.0))
                .filter(file_versions::blob_key.eq(new.blob_key))
                .select(file_versions::id)
                .first(conn)
                .await
                .optional()?;
            if used.is_none() {
                return Ok(SharedVersion::UnknownContent);
            }
            Ok(match insert_version(conn, tenant, file_id.0, &new).await? {
                Some(version) => SharedVersion::Added(Box::new(version)),
                None => SharedVersion::NoSuchFile,
            })
        })
        .await
    }

    /// A version of this tenant's whose bytes are stored under `blob_key` (to copy its facts from).
    pub async fn version_with_blob(&self, blob_key: &str) -> Result<Option<FileVersion>, DbError> {
        let mut conn = self.conn().await?;
        Ok(file_versions::table
            .filter(file_versions::tenant_id.eq(self.tenant.0))
            .filter(file_versions::blob_key.eq(blob_key))
            .order(file_versions::created_at.asc())
            .select(FileVersion::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

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

/// What recording an image description did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    Recorded,
    /// The version was deleted meanwhile; `bytes_unused` when no version uses its bytes any more (then the
    /// thumbnails just made from them should go too).
    VersionGone {
        bytes_unused: bool,
    },
}

/// What the image worker read from an image version (the `image` column).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageFactsRecord {
    /// The media type found from the bytes.
    pub format: String,
    /// As displayed (EXIF orientation applied).
    pub width: u32,
    pub height: u32,
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub orientation: Option<u16>,
}

/// One thumbnail of a version (an element of the `thumbnails` column).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThumbnailRecord {
    pub index: u32,
    pub id: String,
    /// The thumbnail's media type.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: i64,
    pub width: u32,
    pub height: u32,
    /// The longest side it was made for.
    pub longest_side: u32,
}

/// What the image worker found: facts and thumbnails, or why it refused the bytes.
#[derive(Debug, Clone)]
pub enum ImageDescription {
    Facts { image: ImageFactsRecord, thumbnails: Vec<ThumbnailRecord> },
    Refused { reason: String },
}

impl TenantDb {
    /// Records what the image worker found for one version whose bytes are at `blob_key`, under the bytes' lock
    /// (so a removal of them either sees the recorded thumbnails' owner or ran before and is reported).
    pub async fn record_image_description(
        &self,
        version_id: Uuid,
        blob_key: &str,
        description: &ImageDescription,
    ) -> Result<Described, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            lock_blob(conn, blob_key).await?;
            let target = file_versions::table
                .filter(file_versions::id.eq(version_id))
                .filter(file_versions::tenant_id.eq(tenant.0))
                .filter(file_versions::blob_key.eq(blob_key));
            let updated = match description {
                ImageDescription::Facts { image, thumbnails } => {
                    let image = serde_json::to_value(image)
                        .map_err(|err| DbError::Corrupt(format!("encoding an image description: {err}")))?;
                    let thumbnails = serde_json::to_value(thumbnails)
                        .map_err(|err| DbError::Corrupt(format!("encoding an image description: {err}")))?;
                    diesel::update(target)
                        .set((
                            file_versions::image.eq(Some(&image)),
                            file_versions::thumbnails.eq(&thumbnails),
                            file_versions::image_refusal.eq(None::<String>),
                            file_versions::described_at.eq(crate::clock::db_now_nullable()),
                        ))
                        .execute(conn)
                        .await?
                }
                ImageDescription::Refused { reason } => {
                    diesel::update(target)
                        .set((
                            file_versions::image_refusal.eq(Some(reason)),
                            file_versions::described_at.eq(crate::clock::db_now_nullable()),
                        ))
                        .execute(conn)
                        .await?
                }
            };
            if updated > 0 {
                return Ok(Described::Recorded);
            }
            let still_used: Option<Uuid> = file_versions::table
                .filter(file_versions::blob_key.eq(blob_key))
                .select(file_versions::id)
                .first(conn)
                .await
                .optional()?;
            Ok(Described::VersionGone { bytes_unused: still_used.is_none() })
        })
        .await
    }
}

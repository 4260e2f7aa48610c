//! The files API's side of the store: folders, filtered file listing, file updates and deletion.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ferry_core::FileId;
use uuid::Uuid;

use crate::files::StoredFile;
use crate::schema::{file_versions, files, folders};
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = folders)]
pub struct Folder {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub description: String,
    /// Set while the folder is in the trash.
    pub trashed_at: Option<DateTime<Utc>>,
    /// The item's share settings (`public` link), as the documents API stores them.
    pub access_info: Option<serde_json::Value>,
    pub tags: Vec<String>,
}

/// Where listed files must be.
#[derive(Debug, Clone, Copy, Default)]
pub enum FolderScope {
    /// Anywhere.
    #[default]
    Any,
    /// Not in any folder.
    Root,
    In(Uuid),
}

#[derive(Debug, Clone, Default)]
pub struct FileFilter<'a> {
    pub folder: FolderScope,
    /// Files carrying every one of these tags.
    pub tags: &'a [String],
    pub status: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// Changes to a file; `None` leaves a field as it is, `folder_id: Some(None)` moves the file out of folders.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = files)]
pub struct FileUpdate {
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub folder_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone)]
pub enum FolderDelete {
    Deleted,
    NotFound,
    NotEmpty { files: i64, folders: i64 },
}

#[derive(Debug, Clone)]
pub enum FileDelete {
    /// The row and its versions are gone; store tasks written in the same transaction remove these blobs.
    Deleted {
        file: Box<StoredFile>,
        blob_keys: Vec<String>,
    },
    NotFound,
    /// An unfinished job still reads or fills it.
    InUse {
        job_ids: Vec<Uuid>,
    },
}

impl Db {
    /// The export format an import chose for this placeholder file when its Drive file has `workspace_mime`
    /// (an entry for that type, else the `*` entry), if any.
    pub async fn import_export_format(&self, file_id: FileId, workspace_mime: &str) -> Result<Option<String>, DbError> {
        let formats = self.import_export_formats(file_id).await?;
        Ok(formats
            .and_then(|f| f.get(workspace_mime).or_else(|| f.get("*")).and_then(|v| v.as_str()).map(str::to_owned)))
    }

    /// The export formats an import chose for this placeholder file, if any.
    pub async fn import_export_formats(&self, file_id: FileId) -> Result<Option<serde_json::Value>, DbError> {
        use crate::schema::import_export_formats;
        let mut conn = self.conn().await?;
        Ok(import_export_formats::table
            .find(file_id.0)
            .select(import_export_formats::formats)
            .first(&mut conn)
            .await
            .optional()?)
    }
}

impl TenantDb {
    pub async fn create_folder(&self, id: Uuid, name: &str, parent_id: Option<Uuid>) -> Result<Folder, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::insert_into(folders::table)
            .values((
                folders::id.eq(id),
                folders::tenant_id.eq(self.tenant.0),
                folders::name.eq(name),
                folders::parent_id.eq(parent_id),
            ))
            .returning(Folder::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// A folder of this tenant (another tenant's id is simply not found).
    pub async fn get_folder(&self, id: Uuid) -> Result<Option<Folder>, DbError> {
        let mut conn = self.conn().await?;
        Ok(folders::table
            .filter(folders::id.eq(id))
            .filter(folders::tenant_id.eq(self.tenant.0))
            .select(Folder::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// The folders directly inside `parent` (`None`: top level), by name.
    pub async fn list_folders(
        &self,
        parent: Option<Uuid>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Folder>, i64), DbError> {
        let mut conn = self.conn().await?;
        let query = || {
            let query = folders::table
                .filter(folders::tenant_id.eq(self.tenant.0))
                .filter(folders::trashed_at.is_null())
                .into_boxed();
            match parent {
                Some(parent) => query.filter(folders::parent_id.eq(parent)),
                None => query.filter(folders::parent_id.is_null()),
            }
        };
        let total: i64 = query().count().get_result(&mut conn).await?;
        let rows = query()
            .order((folders::name.asc(), folders::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Folder::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }

    pub async fn rename_folder(&self, id: Uuid, name: &str) -> Result<Option<Folder>, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::update(folders::table.filter(folders::id.eq(id)).filter(folders::tenant_id.eq(self.tenant.0)))
            .set((folders::name.eq(name), folders::updated_at.eq(Utc::now())))
            .returning(Folder::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?)
    }

    /// Deletes a folder only when no file and no folder is inside it (checked under a lock on the folder).
    pub async fn delete_folder(&self, id: Uuid) -> Result<FolderDelete, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let found: Option<Uuid> = folders::table
                .filter(folders::id.eq(id))
                .filter(folders::tenant_id.eq(self.tenant.0))
                .select(folders::id)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            if found.is_none() {
                return Ok(FolderDelete::NotFound);
            }
            let file_count: i64 = files::table.filter(files::folder_id.eq(id)).count().get_result(conn).await?;
            let folder_count: i64 = folders::table.filter(folders::parent_id.eq(id)).count().get_result(conn).await?;
            if file_count > 0 || folder_count > 0 {
                return Ok(FolderDelete::NotEmpty { files: file_count, folders: folder_count });
            }
            diesel::delete(folders::table.find(id)).execute(conn).await?;
            Ok(FolderDelete::Deleted)
        })
        .await
    }

    /// Files matching the filter, newest first, with the total matching it.
    pub async fn list_files_filtered(&self, filter: &FileFilter<'_>) -> Result<(Vec<StoredFile>, i64), DbError> {
        use diesel::PgArrayExpressionMethods;
        let mut conn = self.conn().await?;
        let query = || {
            // Trashed files are the trash's (the documents API), not the files API's.
            let mut query = files::table
                .filter(files::tenant_id.eq(self.tenant.0))
                .filter(files::trashed_at.is_null())
                .into_boxed();
            match filter.folder {
                // Nor the files inside a trashed directory (at any depth): they went to the trash with it.
                // One walk down from the tenant's trashed directories (Postgres runs the uncorrelated subquery
                // once per query, not once per file).
                FolderScope::Any => {
                    let outside_trash = diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "(files.folder_id IS NULL OR files.folder_id NOT IN (WITH RECURSIVE trashed(id) AS ( \
                         SELECT id FROM folders WHERE trashed_at IS NOT NULL AND tenant_id = ",
                    )
                    .bind::<diesel::sql_types::Uuid, _>(self.tenant.0)
                    .sql(
                        " UNION SELECT d.id FROM folders d JOIN trashed t ON d.parent_id = t.id) \
                         SELECT id FROM trashed))",
                    );
                    query = query.filter(outside_trash)
                }
                FolderScope::Root => query = query.filter(files::folder_id.is_null()),
                FolderScope::In(folder) => query = query.filter(files::folder_id.eq(folder)),
            }
            if !filter.tags.is_empty() {
                query = query.filter(files::tags.contains(filter.tags.to_vec()));
            }
            if let Some(status) = filter.status {
                query = query.filter(files::status.eq(status.to_owned()));
            }
            query
        };
        let total: i64 = query().count().get_result(&mut conn).await?;
        let rows = query()
            .order((files::created_at.desc(), files::id.desc()))
            .limit(filter.limit)
            .offset(filter.offset)
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }

    /// Applies `update` to the tenant's file; `None` when there is no such file.
    pub async fn update_file(&self, id: FileId, update: &FileUpdate) -> Result<Option<StoredFile>, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::update(files::table.filter(files::id.eq(id.0)).filter(files::tenant_id.eq(self.tenant.0)))
            .set((update, files::updated_at.eq(Utc::now())))
            .returning(StoredFile::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?)
    }

    /// Deletes the file's row unless an unfinished job item still needs it. Finished items keep the id.
    pub async fn delete_file(&self, id: FileId) -> Result<FileDelete, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let Some(file) = files::table
                .filter(files::id.eq(id.0))
                .filter(files::tenant_id.eq(self.tenant.0))
                .select(StoredFile::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(FileDelete::NotFound);
            };
            let job_ids = crate::items::unfinished_jobs_using(conn, self.tenant.0, &[id.0]).await?;
            if !job_ids.is_empty() {
                return Ok(FileDelete::InUse { job_ids });
            }
            let mut blob_keys: Vec<String> = file_versions::table
                .filter(file_versions::file_id.eq(id.0))
                .select(file_versions::blob_key)
                .load(conn)
                .await?;
            blob_keys.extend(file.blob_key.clone());
            blob_keys.sort();
            blob_keys.dedup();
            diesel::delete(files::table.find(id.0)).execute(conn).await?;
            // The bytes go after the commit, through the queue, and only once no other version uses them.
            let tenant = self.tenant.0.to_string();
            let tasks = blob_keys.iter().map(|key| ferry_messages::remove_blob(&tenant, key)).collect();
            crate::outbox::insert_store_tasks(conn, tasks).await?;
            Ok(FileDelete::Deleted { file: Box::new(file), blob_keys })
        })
        .await
    }
}

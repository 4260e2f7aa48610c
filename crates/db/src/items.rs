//! The store as one tree of items: directories (`folders`) and files (`files`, with their versions). These
//! queries read both kinds together, as the documents API shows them.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::files::StoredFile;
use crate::schema::{files, folders};
use crate::store::Folder;
use crate::{DbError, TenantDb};

/// Items directly inside one directory: directories first, then files, each by name.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub folders: Vec<Folder>,
    pub files: Vec<StoredFile>,
    /// More of either kind exist beyond `limit`.
    pub truncated: bool,
}

impl TenantDb {
    /// The live (not trashed) items directly inside `parent` (`None`: the top level), at most `limit` of each
    /// kind.
    pub async fn children(&self, parent: Option<Uuid>, limit: i64) -> Result<Children, DbError> {
        let mut conn = self.conn().await?;
        let mut folder_query = folders::table
            .filter(folders::tenant_id.eq(self.tenant.0))
            .filter(folders::trashed_at.is_null())
            .into_boxed();
        let mut file_query =
            files::table.filter(files::tenant_id.eq(self.tenant.0)).filter(files::trashed_at.is_null()).into_boxed();
        match parent {
            Some(parent) => {
                folder_query = folder_query.filter(folders::parent_id.eq(parent));
                file_query = file_query.filter(files::folder_id.eq(parent));
            }
            None => {
                folder_query = folder_query.filter(folders::parent_id.is_null());
                file_query = file_query.filter(files::folder_id.is_null());
            }
        }
        let mut folders = folder_query
            .order((folders::name.asc(), folders::id.asc()))
            .limit(limit + 1)
            .select(Folder::as_select())
            .load(&mut conn)
            .await?;
        let mut files = file_query
            .order((files::name.asc(), files::id.asc()))
            .limit(limit + 1)
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let truncated = folders.len() > limit || files.len() > limit;
        folders.truncate(limit);
        files.truncate(limit);
        Ok(Children { folders, files, truncated })
    }

    /// What the trash shows: trashed items whose parent is not itself trashed (each stands for its subtree).
    pub async fn trash_tops(&self, limit: i64) -> Result<Children, DbError> {
        let mut conn = self.conn().await?;
        let (parents, trashed_parents) = diesel::alias!(folders as parents, folders as trashed_parents);
        let mut folders = folders::table
            .left_join(
                parents.on(parents
                    .field(folders::id)
                    .nullable()
                    .eq(folders::parent_id)
                    .and(parents.field(folders::trashed_at).is_not_null())),
            )
            .filter(folders::tenant_id.eq(self.tenant.0))
            .filter(folders::trashed_at.is_not_null())
            .filter(parents.field(folders::id).is_null())
            .order((folders::trashed_at.desc(), folders::id.asc()))
            .limit(limit + 1)
            .select(Folder::as_select())
            .load(&mut conn)
            .await?;
        let mut files = files::table
            .left_join(
                trashed_parents.on(trashed_parents
                    .field(folders::id)
                    .nullable()
                    .eq(files::folder_id)
                    .and(trashed_parents.field(folders::trashed_at).is_not_null())),
            )
            .filter(files::tenant_id.eq(self.tenant.0))
            .filter(files::trashed_at.is_not_null())
            .filter(trashed_parents.field(folders::id).is_null())
            .order((files::trashed_at.desc(), files::id.asc()))
            .limit(limit + 1)
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let truncated = folders.len() > limit || files.len() > limit;
        folders.truncate(limit);
        files.truncate(limit);
        Ok(Children { folders, files, truncated })
    }
}

/// A directory about to be created; the caller has checked that `parent_id` is a live directory of the tenant.
#[derive(Debug, Clone)]
pub struct NewDirectory<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub parent_id: Option<Uuid>,
    pub description: &'a str,
    pub tags: &'a [String],
    /// Share settings to start with (`None`: not shared).
    pub access_info: Option<&'a serde_json::Value>,
}

/// Changes to an item; `None` leaves a field as it is. `parent: Some(None)` moves it to the top level.
#[derive(Debug, Clone, Default)]
pub struct ItemChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub parent: Option<Option<Uuid>>,
}

/// What an item update did.
#[derive(Debug, Clone)]
pub enum ItemUpdate<T> {
    Updated(Box<T>),
    NotFound,
    /// The new parent is not a live directory of the tenant.
    NoSuchParent,
    /// A directory cannot move under itself or one of its descendants.
    Cycle,
}

impl TenantDb {
    pub async fn create_directory(&self, new: NewDirectory<'_>) -> Result<Folder, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::insert_into(folders::table)
            .values((
                folders::id.eq(new.id),
                folders::tenant_id.eq(self.tenant.0),
                folders::name.eq(new.name),
                folders::parent_id.eq(new.parent_id),
                folders::description.eq(new.description),
                folders::tags.eq(new.tags),
                folders::access_info.eq(new.access_info),
            ))
            .returning(Folder::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// A live (not trashed) directory of the tenant.
    pub async fn live_directory(&self, id: Uuid) -> Result<Option<Folder>, DbError> {
        Ok(self.get_folder(id).await?.filter(|folder| folder.trashed_at.is_none()))
    }

    /// Updates a directory. Moves are serialized per tenant (an advisory lock for the transaction), so two
    /// concurrent moves cannot make a cycle that neither would make alone.
    pub async fn update_directory(&self, id: Uuid, changes: &ItemChanges) -> Result<ItemUpdate<Folder>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            if let Some(Some(parent)) = changes.parent {
                lock_tenant_tree(conn, tenant.0).await?;
                if !live_directory_exists(conn, tenant.0, parent).await? {
                    return Ok(ItemUpdate::NoSuchParent);
                }
                if parent == id || is_ancestor(conn, tenant.0, id, parent).await? {
                    return Ok(ItemUpdate::Cycle);
                }
            }
            let target = folders::table.filter(folders::id.eq(id)).filter(folders::tenant_id.eq(tenant.0));
            let exists: Option<Uuid> = target.select(folders::id).for_update().first(conn).await.optional()?;
            if exists.is_none() {
                return Ok(ItemUpdate::NotFound);
            }
            if let Some(name) = &changes.name {
                diesel::update(target).set(folders::name.eq(name)).execute(conn).await?;
            }
            if let Some(description) = &changes.description {
                diesel::update(target).set(folders::description.eq(description)).execute(conn).await?;
            }
            if let Some(tags) = &changes.tags {
                diesel::update(target).set(folders::tags.eq(tags)).execute(conn).await?;
            }
            if let Some(parent) = changes.parent {
                diesel::update(target).set(folders::parent_id.eq(parent)).execute(conn).await?;
            }
            let folder = diesel::update(target)
                .set(folders::updated_at.eq(crate::clock::db_now()))
                .returning(Folder::as_returning())
                .get_result(conn)
                .await?;
            Ok(ItemUpdate::Updated(Box::new(folder)))
        })
        .await
    }

    /// Updates a file item (a file cannot contain anything, so a move needs no cycle check).
    pub async fn update_file_item(&self, id: Uuid, changes: &ItemChanges) -> Result<ItemUpdate<StoredFile>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            if let Some(Some(parent)) = changes.parent
                && !live_directory_exists(conn, tenant.0, parent).await?
            {
                return Ok(ItemUpdate::NoSuchParent);
            }
            let target = files::table.filter(files::id.eq(id)).filter(files::tenant_id.eq(tenant.0));
            let exists: Option<Uuid> = target.select(files::id).for_update().first(conn).await.optional()?;
            if exists.is_none() {
                return Ok(ItemUpdate::NotFound);
            }
            if let Some(name) = &changes.name {
                diesel::update(target).set(files::name.eq(name)).execute(conn).await?;
            }
            if let Some(description) = &changes.description {
                diesel::update(target).set(files::description.eq(description)).execute(conn).await?;
            }
            if let Some(tags) = &changes.tags {
                diesel::update(target).set(files::tags.eq(tags)).execute(conn).await?;
            }
            if let Some(parent) = changes.parent {
                diesel::update(target).set(files::folder_id.eq(parent)).execute(conn).await?;
            }
            let file = diesel::update(target)
                .set(files::updated_at.eq(crate::clock::db_now()))
                .returning(StoredFile::as_returning())
                .get_result(conn)
                .await?;
            Ok(ItemUpdate::Updated(Box::new(file)))
        })
        .await
    }
}

/// Serializes directory moves of one tenant for the rest of the transaction.
async fn lock_tenant_tree(conn: &mut AsyncPgConnection, tenant: Uuid) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('ferry.tree.' || $1::text, 0))")
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .execute(conn)
        .await?;
    Ok(())
}

async fn live_directory_exists(conn: &mut AsyncPgConnection, tenant: Uuid, id: Uuid) -> Result<bool, DbError> {
    let found: Option<Uuid> = folders::table
        .filter(folders::id.eq(id))
        .filter(folders::tenant_id.eq(tenant))
        .filter(folders::trashed_at.is_null())
        .select(folders::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

/// True when `ancestor` is on the parent chain above `of` (within the tenant).
async fn is_ancestor(conn: &mut AsyncPgConnection, tenant: Uuid, ancestor: Uuid, of: Uuid) -> Result<bool, DbError> {
    let row: Found = diesel::sql_query(
        "WITH RECURSIVE up(id, parent_id, depth) AS ( \
             SELECT id, parent_id, 0 FROM folders WHERE id = $1 AND tenant_id = $3 \
             UNION ALL \
             SELECT f.id, f.parent_id, up.depth + 1 FROM folders f JOIN up ON f.id = up.parent_id \
             WHERE f.tenant_id = $3 AND up.depth < 10000 \
         ) SELECT EXISTS (SELECT 1 FROM up WHERE id = $2) AS found",
    )
    .bind::<diesel::sql_types::Uuid, _>(of)
    .bind::<diesel::sql_types::Uuid, _>(ancestor)
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .get_result(conn)
    .await?;
    Ok(row.found)
}

/// What trashing or restoring an item did.
#[derive(Debug, Clone)]
pub enum TrashChange<T> {
    Done(Box<T>),
    NotFound,
    /// Trashing an item already in the trash, or restoring one that is not.
    Unchanged,
}

impl TenantDb {
    /// Puts a live directory in the trash (its parent is kept; its contents go with it).
    pub async fn trash_directory(&self, id: Uuid) -> Result<TrashChange<Folder>, DbError> {
        let mut conn = self.conn().await?;
        let target = || folders::table.filter(folders::id.eq(id)).filter(folders::tenant_id.eq(self.tenant.0));
        let trashed: Option<Folder> = diesel::update(target().filter(folders::trashed_at.is_null()))
            .set((
                folders::trashed_at.eq(crate::clock::db_now_nullable()),
                folders::updated_at.eq(crate::clock::db_now()),
            ))
            .returning(Folder::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?;
        Ok(match trashed {
            Some(folder) => TrashChange::Done(Box::new(folder)),
            None => {
                let exists: Option<Uuid> = target().select(folders::id).first(&mut conn).await.optional()?;
                if exists.is_some() { TrashChange::Unchanged } else { TrashChange::NotFound }
            }
        })
    }

    /// Puts a live file in the trash.
    pub async fn trash_file(&self, id: Uuid) -> Result<TrashChange<StoredFile>, DbError> {
        let mut conn = self.conn().await?;
        let target = || files::table.filter(files::id.eq(id)).filter(files::tenant_id.eq(self.tenant.0));
        let trashed: Option<StoredFile> = diesel::update(target().filter(files::trashed_at.is_null()))
            .set((files::trashed_at.eq(crate::clock::db_now_nullable()), files::updated_at.eq(crate::clock::db_now())))
            .returning(StoredFile::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?;
        Ok(match trashed {
            Some(file) => TrashChange::Done(Box::new(file)),
            None => {
                let exists: Option<Uuid> = target().select(files::id).first(&mut conn).await.optional()?;
                if exists.is_some() { TrashChange::Unchanged } else { TrashChange::NotFound }
            }
        })
    }

    /// Takes a directory out of the trash: back to its parent, or to the top level when the parent is gone or
    /// itself in the trash.
    pub async fn restore_directory(&self, id: Uuid) -> Result<TrashChange<Folder>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let target = folders::table.filter(folders::id.eq(id)).filter(folders::tenant_id.eq(tenant.0));
            let Some(folder) = target.select(Folder::as_select()).for_update().first(conn).await.optional()? else {
                return Ok(TrashChange::NotFound);
            };
            if folder.trashed_at.is_none() {
                return Ok(TrashChange::Unchanged);
            }
            let parent = match folder.parent_id {
                Some(parent) if live_directory_exists(conn, tenant.0, parent).await? => Some(parent),
                _ => None,
            };
            let restored = diesel::update(target)
                .set((
                    folders::trashed_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                    folders::parent_id.eq(parent),
                    folders::updated_at.eq(crate::clock::db_now()),
                ))
                .returning(Folder::as_returning())
                .get_result(conn)
                .await?;
            Ok(TrashChange::Done(Box::new(restored)))
        })
        .await
    }

    /// Takes a file out of the trash, back to its directory or to the top level (see [`Self::restore_directory`]).
    pub async fn restore_file(&self, id: Uuid) -> Result<TrashChange<StoredFile>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let target = files::table.filter(files::id.eq(id)).filter(files::tenant_id.eq(tenant.0));
            let Some(file) = target.select(StoredFile::as_select()).for_update().first(conn).await.optional()? else {
                return Ok(TrashChange::NotFound);
            };
            if file.trashed_at.is_none() {
                return Ok(TrashChange::Unchanged);
            }
            let parent = match file.folder_id {
                Some(parent) if live_directory_exists(conn, tenant.0, parent).await? => Some(parent),
                _ => None,
            };
            let restored = diesel::update(target)
                .set((
                    files::trashed_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                    files::folder_id.eq(parent),
                    files::updated_at.eq(crate::clock::db_now()),
                ))
                .returning(StoredFile::as_returning())
                .get_result(conn)
                .await?;
            Ok(TrashChange::Done(Box::new(restored)))
        })
        .await
    }
}

/// A stored item: a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKey {
    Directory(Uuid),
    File(Uuid),
}

/// What deleting forever did.
#[derive(Debug, Clone)]
pub enum ForeverDelete {
    /// The rows are gone; removing their bytes is queued.
    Deleted {
        directories: usize,
        files: usize,
        blobs: usize,
    },
    NotFound,
    /// The item is live (neither it nor a directory above it is in the trash): trash it first.
    NotInTrash,
    /// An unfinished job still uses one of the files.
    InUse {
        job_ids: Vec<Uuid>,
    },
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

impl TenantDb {
    /// Deletes forever an item that is in the trash or inside a trashed directory, with everything below it and
    /// every version. The bytes are removed after the commit by store tasks written in the same transaction.
    pub async fn delete_forever(&self, item: ItemKey) -> Result<ForeverDelete, DbError> {
        let tenant = self.tenant.0;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            // A move or restore cannot take part of the subtree out of the trash while it is being deleted.
            lock_tenant_tree(conn, tenant).await?;
            let (directories, file_ids) = match item {
                ItemKey::Directory(id) => {
                    let Some(folder) = folders::table
                        .filter(folders::id.eq(id))
                        .filter(folders::tenant_id.eq(tenant))
                        .select(Folder::as_select())
                        .first(conn)
                        .await
                        .optional()?
                    else {
                        return Ok(ForeverDelete::NotFound);
                    };
                    if folder.trashed_at.is_none() && !trashed_above(conn, tenant, folder.parent_id).await? {
                        return Ok(ForeverDelete::NotInTrash);
                    }
                    (subtree_directories(conn, tenant, &[id]).await?, Vec::new())
                }
                ItemKey::File(id) => {
                    let Some(file) = files::table
                        .filter(files::id.eq(id))
                        .filter(files::tenant_id.eq(tenant))
                        .select(StoredFile::as_select())
                        .first(conn)
                        .await
                        .optional()?
                    else {
                        return Ok(ForeverDelete::NotFound);
                    };
                    if file.trashed_at.is_none() && !trashed_above(conn, tenant, file.folder_id).await? {
                        return Ok(ForeverDelete::NotInTrash);
                    }
                    (Vec::new(), vec![id])
                }
            };
            remove_items(conn, tenant, directories, file_ids).await
        })
        .await
    }

    /// Deletes forever everything in the trash (see [`Self::delete_forever`]).
    pub async fn empty_trash(&self) -> Result<ForeverDelete, DbError> {
        let tenant = self.tenant.0;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            lock_tenant_tree(conn, tenant).await?;
            let trashed_directories: Vec<Uuid> = folders::table
                .filter(folders::tenant_id.eq(tenant))
                .filter(folders::trashed_at.is_not_null())
                .select(folders::id)
                .load(conn)
                .await?;
            let trashed_files: Vec<Uuid> = files::table
                .filter(files::tenant_id.eq(tenant))
                .filter(files::trashed_at.is_not_null())
                .select(files::id)
                .load(conn)
                .await?;
            let directories = subtree_directories(conn, tenant, &trashed_directories).await?;
            remove_items(conn, tenant, directories, trashed_files).await
        })
        .await
    }
}

/// True when `folder` or a directory above it is in the trash.
async fn trashed_above(conn: &mut AsyncPgConnection, tenant: Uuid, folder: Option<Uuid>) -> Result<bool, DbError> {
    let Some(folder) = folder else { return Ok(false) };
    let row: Found = diesel::sql_query(
        "WITH RECURSIVE up(id, parent_id, trashed, depth) AS ( \
             SELECT id, parent_id, trashed_at IS NOT NULL, 0 FROM folders WHERE id = $1 AND tenant_id = $2 \
             UNION ALL \
             SELECT f.id, f.parent_id, f.trashed_at IS NOT NULL, up.depth + 1 FROM folders f \
             JOIN up ON f.id = up.parent_id WHERE f.tenant_id = $2 AND up.depth < 10000 \
         ) SELECT EXISTS (SELECT 1 FROM up WHERE trashed) AS found",
    )
    .bind::<diesel::sql_types::Uuid, _>(folder)
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .get_result(conn)
    .await?;
    Ok(row.found)
}

/// `tops` and every directory below them (within the tenant).
async fn subtree_directories(conn: &mut AsyncPgConnection, tenant: Uuid, tops: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
    if tops.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<IdRow> = diesel::sql_query(
        "WITH RECURSIVE down(id) AS ( \
             SELECT id FROM folders WHERE id = ANY($1) AND tenant_id = $2 \
             UNION \
             SELECT f.id FROM folders f JOIN down ON f.parent_id = down.id WHERE f.tenant_id = $2 \
         ) SELECT id FROM down",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(tops)
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The unfinished jobs (sorted, once each) that still read or fill one of the tenant's `file_ids`.
pub(crate) async fn unfinished_jobs_using(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    file_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbError> {
    use crate::schema::job_items;
    let mut job_ids: Vec<Uuid> = job_items::table
        .filter(job_items::tenant_id.eq(tenant))
        .filter(job_items::file_id.eq_any(file_ids))
        .filter(
            job_items::status
                .eq_any([ferry_core::ItemStatus::Pending.as_str(), ferry_core::ItemStatus::Running.as_str()]),
        )
        .select(job_items::job_id)
        .load(conn)
        .await?;
    job_ids.sort();
    job_ids.dedup();
    Ok(job_ids)
}

/// Deletes `directories`, the files in them and `file_ids`, with their versions, and queues the removal of
/// their bytes; refuses while an unfinished job uses one of the files.
async fn remove_items(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    directories: Vec<Uuid>,
    mut file_ids: Vec<Uuid>,
) -> Result<ForeverDelete, DbError> {
    use crate::schema::file_versions;
    let inside: Vec<Uuid> = files::table
        .filter(files::tenant_id.eq(tenant))
        .filter(files::folder_id.eq_any(&directories))
        .select(files::id)
        .load(conn)
        .await?;
    file_ids.extend(inside);
    file_ids.sort();
    file_ids.dedup();
    let job_ids = unfinished_jobs_using(conn, tenant, &file_ids).await?;
    if !job_ids.is_empty() {
        return Ok(ForeverDelete::InUse { job_ids });
    }
    let mut blob_keys: Vec<String> = file_versions::table
        .filter(file_versions::tenant_id.eq(tenant))
        .filter(file_versions::file_id.eq_any(&file_ids))
        .select(file_versions::blob_key)
        .load(conn)
        .await?;
    let cached: Vec<Option<String>> = files::table
        .filter(files::tenant_id.eq(tenant))
        .filter(files::id.eq_any(&file_ids))
        .select(files::blob_key)
        .load(conn)
        .await?;
    blob_keys.extend(cached.into_iter().flatten());
    blob_keys.sort();
    blob_keys.dedup();
    let files_deleted =
        diesel::delete(files::table.filter(files::tenant_id.eq(tenant)).filter(files::id.eq_any(&file_ids)))
            .execute(conn)
            .await?;
    // One statement: a directory's row may go with the directories inside it.
    let directories_deleted =
        diesel::delete(folders::table.filter(folders::tenant_id.eq(tenant)).filter(folders::id.eq_any(&directories)))
            .execute(conn)
            .await?;
    let tenant_text = tenant.to_string();
    let tasks = blob_keys.iter().map(|key| ferry_messages::remove_blob(&tenant_text, key)).collect();
    crate::outbox::insert_store_tasks(conn, tasks).await?;
    Ok(ForeverDelete::Deleted { directories: directories_deleted, files: files_deleted, blobs: blob_keys.len() })
}

/// One item on the way from an item up to the top level, with its share settings.
#[derive(Debug, Clone)]
pub struct ChainLink {
    pub key: ItemKey,
    pub access_info: Option<serde_json::Value>,
}

#[derive(QueryableByName)]
struct ChainRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
    access_info: Option<serde_json::Value>,
}

/// A live item below the tops of a zip download: its place (parent directory) and what to write.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    pub key: ItemKey,
    /// The directory it is in (`None` for a top).
    pub parent: Option<Uuid>,
    pub name: String,
    /// A file's stored bytes, size and type (the latest version); `None` for directories and files without
    /// content yet.
    pub blob_key: Option<String>,
    pub size: i64,
    pub mime_type: Option<String>,
}

impl TenantDb {
    /// The item and every directory above it, nearest first; `None` when the tenant has no such item.
    pub async fn item_chain(&self, item: ItemKey) -> Result<Option<Vec<ChainLink>>, DbError> {
        let tenant = self.tenant.0;
        let mut conn = self.conn().await?;
        let (mut links, start) = match item {
            ItemKey::File(id) => {
                let found: Option<(Option<Uuid>, Option<serde_json::Value>)> = files::table
                    .filter(files::id.eq(id))
                    .filter(files::tenant_id.eq(tenant))
                    .select((files::folder_id, files::access_info))
                    .first(&mut conn)
                    .await
                    .optional()?;
                let Some((folder, access_info)) = found else { return Ok(None) };
                (vec![ChainLink { key: item, access_info }], folder)
            }
            ItemKey::Directory(id) => (Vec::new(), Some(id)),
        };
        if let Some(start) = start {
            let rows: Vec<ChainRow> = diesel::sql_query(
                "WITH RECURSIVE up(id, parent_id, access_info, depth) AS ( \
                     SELECT id, parent_id, access_info, 0 FROM folders WHERE id = $1 AND tenant_id = $2 \
                     UNION ALL \
                     SELECT f.id, f.parent_id, f.access_info, up.depth + 1 FROM folders f \
                     JOIN up ON f.id = up.parent_id WHERE f.tenant_id = $2 AND up.depth < 10000 \
                 ) SELECT id, access_info FROM up ORDER BY depth",
            )
            .bind::<diesel::sql_types::Uuid, _>(start)
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .load(&mut conn)
            .await?;
            if rows.is_empty() && matches!(item, ItemKey::Directory(_)) {
                return Ok(None);
            }
            links.extend(
                rows.into_iter().map(|row| ChainLink { key: ItemKey::Directory(row.id), access_info: row.access_info }),
            );
        }
        Ok(Some(links))
    }

    /// Replaces an item's share settings; false when the tenant has no such item.
    pub async fn set_access_info(&self, item: ItemKey, access_info: &serde_json::Value) -> Result<bool, DbError> {
        let tenant = self.tenant.0;
        let mut conn = self.conn().await?;
        let updated = match item {
            ItemKey::File(id) => {
                diesel::update(files::table.filter(files::id.eq(id)).filter(files::tenant_id.eq(tenant)))
                    .set((files::access_info.eq(Some(access_info)), files::updated_at.eq(crate::clock::db_now())))
                    .execute(&mut conn)
                    .await?
            }
            ItemKey::Directory(id) => {
                diesel::update(folders::table.filter(folders::id.eq(id)).filter(folders::tenant_id.eq(tenant)))
                    .set((folders::access_info.eq(Some(access_info)), folders::updated_at.eq(crate::clock::db_now())))
                    .execute(&mut conn)
                    .await?
            }
        };
        Ok(updated > 0)
    }

    /// The live items at and below `tops` (trashed items and what is inside them are left out), tops first,
    /// then each directory's contents. `None` when a top is missing or in the trash.
    pub async fn live_tree(&self, tops: &[ItemKey]) -> Result<Option<Vec<TreeEntry>>, DbError> {
        let tenant = self.tenant.0;
        let mut conn = self.conn().await?;
        let top_dirs: Vec<Uuid> =
            tops.iter().filter_map(|k| if let ItemKey::Directory(id) = k { Some(*id) } else { None }).collect();
        let top_files: Vec<Uuid> =
            tops.iter().filter_map(|k| if let ItemKey::File(id) = k { Some(*id) } else { None }).collect();
        #[derive(QueryableByName)]
        struct DirRow {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
            parent_id: Option<Uuid>,
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            top: bool,
        }
        let dirs: Vec<DirRow> = if top_dirs.is_empty() {
            Vec::new()
        } else {
            diesel::sql_query(
                "WITH RECURSIVE down(id, parent_id, name, top) AS ( \
                     SELECT id, parent_id, name, true FROM folders \
                     WHERE id = ANY($1) AND tenant_id = $2 AND trashed_at IS NULL \
                     UNION \
                     SELECT f.id, f.parent_id, f.name, false FROM folders f JOIN down ON f.parent_id = down.id \
                     WHERE f.tenant_id = $2 AND f.trashed_at IS NULL \
                 ) SELECT id, parent_id, name, top FROM down",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&top_dirs)
            .bind::<diesel::sql_types::Uuid, _>(tenant)
            .load(&mut conn)
            .await?
        };
        if dirs.iter().filter(|d| d.top).count() != top_dirs.len() {
            return Ok(None);
        }
        let dir_ids: Vec<Uuid> = dirs.iter().map(|d| d.id).collect();
        let files: Vec<StoredFile> = files::table
            .filter(files::tenant_id.eq(tenant))
            .filter(files::trashed_at.is_null())
            .filter(files::id.eq_any(&top_files).or(files::folder_id.eq_any(&dir_ids)))
            .select(StoredFile::as_select())
            .load(&mut conn)
            .await?;
        if top_files.iter().any(|id| !files.iter().any(|f| f.id == *id)) {
            return Ok(None);
        }
        let mut entries: Vec<TreeEntry> = dirs
            .into_iter()
            .map(|d| TreeEntry {
                key: ItemKey::Directory(d.id),
                parent: if d.top { None } else { d.parent_id },
                name: d.name,
                blob_key: None,
                size: 0,
                mime_type: None,
            })
            .collect();
        entries.extend(files.into_iter().map(|f| TreeEntry {
            key: ItemKey::File(f.id),
            parent: if top_files.contains(&f.id) { None } else { f.folder_id },
            name: f.name,
            blob_key: f.blob_key,
            size: f.size_bytes.unwrap_or(0),
            mime_type: f.mime_type,
        }));
        Ok(Some(entries))
    }
}

/// A tab's configuration: a channel tab shows one item's subtree at one level.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::document_tabs)]
pub struct DocumentTab {
    pub tenant_id: Uuid,
    pub tab_id: String,
    pub channel_id: String,
    pub item_id: String,
    pub level: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TenantDb {
    /// Stores (or replaces) a tab's configuration.
    pub async fn put_tab(
        &self,
        tab_id: &str,
        channel_id: &str,
        item_id: &str,
        level: &str,
    ) -> Result<DocumentTab, DbError> {
        use crate::schema::document_tabs;
        let mut conn = self.conn().await?;
        Ok(diesel::insert_into(document_tabs::table)
            .values((
                document_tabs::tenant_id.eq(self.tenant.0),
                document_tabs::tab_id.eq(tab_id),
                document_tabs::channel_id.eq(channel_id),
                document_tabs::item_id.eq(item_id),
                document_tabs::level.eq(level),
            ))
            .on_conflict((document_tabs::tenant_id, document_tabs::tab_id))
            .do_update()
            .set((
                document_tabs::channel_id.eq(channel_id),
                document_tabs::item_id.eq(item_id),
                document_tabs::level.eq(level),
                document_tabs::updated_at.eq(crate::clock::db_now()),
            ))
            .returning(DocumentTab::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    pub async fn get_tab(&self, tab_id: &str) -> Result<Option<DocumentTab>, DbError> {
        use crate::schema::document_tabs;
        let mut conn = self.conn().await?;
        Ok(document_tabs::table
            .filter(document_tabs::tenant_id.eq(self.tenant.0))
            .filter(document_tabs::tab_id.eq(tab_id))
            .select(DocumentTab::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }
}

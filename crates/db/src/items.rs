//! The store as one tree of items: directories (`folders`) and files (`files`, with their versions). These
//! queries read both kinds together, as the documents API shows them.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::files::StoredFile;
use crate::library::Folder;
use crate::schema::{files, folders};
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

//! Libraries: named directory items of the store, each linked (through an integration and a connection) to the
//! Drive folder whose content it mirrors.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::clock::{db_now, db_now_nullable};
use crate::schema::{connections, folders, libraries};
use crate::{DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = libraries)]
pub struct Library {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub natural_id: Option<String>,
    pub name: String,
    pub root_folder_id: Uuid,
    pub integration_id: Option<Uuid>,
    pub connection_id: Option<Uuid>,
    pub drive_folder_id: Option<String>,
    pub drive_id: Option<String>,
    pub linked_at: Option<DateTime<Utc>>,
    pub sync_interval_secs: Option<i32>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the changes feed continues; `None`: the next run lists the whole folder.
    pub page_token: Option<String>,
    /// The Drive account the mirror was listed with.
    pub synced_account_id: Option<String>,
}

/// A new library; its directory is created at the top level with the library's name.
#[derive(Debug, Clone)]
pub struct NewLibrary<'a> {
    pub id: Uuid,
    pub natural_id: Option<&'a str>,
    pub name: &'a str,
}

/// Changes to a library; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LibraryChanges {
    pub name: Option<String>,
    /// `Some(None)` clears the natural id.
    pub natural_id: Option<Option<String>>,
    /// `Some(None)`: no scheduled syncs.
    pub sync_interval_secs: Option<Option<i32>>,
}

/// What writing a library's natural id found.
#[derive(Debug)]
pub enum LibraryWrite {
    Done(Box<Library>),
    NotFound,
    /// Another library of the tenant has this natural id.
    NaturalIdTaken,
}

/// The Drive folder a library mirrors, through which connection.
#[derive(Debug, Clone)]
pub struct LibraryLink<'a> {
    pub connection_id: Uuid,
    pub drive_folder_id: &'a str,
    /// The shared drive holding the folder; `None` for My Drive.
    pub drive_id: Option<&'a str>,
}

fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

impl TenantDb {
    /// Creates the library and its top-level directory in one transaction.
    pub async fn create_library(&self, new: NewLibrary<'_>) -> Result<LibraryWrite, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        let created = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let folder_id = Uuid::now_v7();
                diesel::insert_into(folders::table)
                    .values((
                        folders::id.eq(folder_id),
                        folders::tenant_id.eq(tenant.0),
                        folders::name.eq(new.name),
                        folders::parent_id.eq(None::<Uuid>),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(libraries::table)
                    .values((
                        libraries::id.eq(new.id),
                        libraries::tenant_id.eq(tenant.0),
                        libraries::natural_id.eq(new.natural_id),
                        libraries::name.eq(new.name),
                        libraries::root_folder_id.eq(folder_id),
                    ))
                    .returning(Library::as_returning())
                    .get_result(conn)
                    .await
            })
            .await;
        match created {
            Ok(library) => Ok(LibraryWrite::Done(Box::new(library))),
            Err(err) if is_unique_violation(&err) => Ok(LibraryWrite::NaturalIdTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// The tenant's libraries, oldest first.
    pub async fn list_libraries(&self, limit: i64, offset: i64) -> Result<(Vec<Library>, i64), DbError> {
        let mut conn = self.conn().await?;
        let rows = libraries::table
            .filter(libraries::tenant_id.eq(self.tenant.0))
            .order((libraries::created_at.asc(), libraries::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Library::as_select())
            .load(&mut conn)
            .await?;
        let total =
            libraries::table.filter(libraries::tenant_id.eq(self.tenant.0)).count().get_result(&mut conn).await?;
        Ok((rows, total))
    }

    /// The library `key` names: its id (a UUID) or, failing that, its natural id.
    pub async fn find_library(&self, key: &str) -> Result<Option<Library>, DbError> {
        let mut conn = self.conn().await?;
        let mine = libraries::table.filter(libraries::tenant_id.eq(self.tenant.0));
        if let Ok(id) = Uuid::parse_str(key)
            && let Some(found) =
                mine.filter(libraries::id.eq(id)).select(Library::as_select()).first(&mut conn).await.optional()?
        {
            return Ok(Some(found));
        }
        Ok(mine.filter(libraries::natural_id.eq(key)).select(Library::as_select()).first(&mut conn).await.optional()?)
    }

    /// Renames (the directory with it), changes the natural id or the sync interval.
    pub async fn update_library(&self, id: Uuid, changes: &LibraryChanges) -> Result<LibraryWrite, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        let updated = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let target = libraries::table.filter(libraries::id.eq(id)).filter(libraries::tenant_id.eq(tenant.0));
                let Some(library) = target.select(Library::as_select()).for_update().first(conn).await.optional()?
                else {
                    return Ok(None);
                };
                let name = changes.name.clone().unwrap_or(library.name);
                let natural_id = changes.natural_id.clone().unwrap_or(library.natural_id);
                let interval = changes.sync_interval_secs.unwrap_or(library.sync_interval_secs);
                if changes.name.is_some() {
                    diesel::update(folders::table.find(library.root_folder_id))
                        .set((folders::name.eq(&name), folders::updated_at.eq(db_now())))
                        .execute(conn)
                        .await?;
                }
                diesel::update(target)
                    .set((
                        libraries::name.eq(&name),
                        libraries::natural_id.eq(natural_id),
                        libraries::sync_interval_secs.eq(interval),
                        libraries::updated_at.eq(db_now()),
                    ))
                    .returning(Library::as_returning())
                    .get_result(conn)
                    .await
                    .map(Some)
            })
            .await;
        match updated {
            Ok(Some(library)) => Ok(LibraryWrite::Done(Box::new(library))),
            Ok(None) => Ok(LibraryWrite::NotFound),
            Err(err) if is_unique_violation(&err) => Ok(LibraryWrite::NaturalIdTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes the library; its directory goes to the trash (recoverable), the files with it. False when there
    /// was no such library.
    pub async fn delete_library(&self, id: Uuid) -> Result<bool, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let root: Option<Uuid> =
                diesel::delete(libraries::table.filter(libraries::id.eq(id)).filter(libraries::tenant_id.eq(tenant.0)))
                    .returning(libraries::root_folder_id)
                    .get_result(conn)
                    .await
                    .optional()?;
            let Some(root) = root else { return Ok(false) };
            diesel::update(folders::table.find(root).filter(folders::trashed_at.is_null()))
                .set((folders::trashed_at.eq(db_now_nullable()), folders::updated_at.eq(db_now())))
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
    }

    /// Sets (or clears) the library's integration. A change drops the connection and everything synced state
    /// depends on, in the same transaction: the next sync starts from a full listing.
    pub async fn set_library_integration(
        &self,
        id: Uuid,
        integration: Option<Uuid>,
    ) -> Result<Option<Library>, DbError> {
        let mut conn = self.conn().await?;
        let target = libraries::table.filter(libraries::id.eq(id)).filter(libraries::tenant_id.eq(self.tenant.0));
        let unchanged = target.filter(libraries::integration_id.is_not_distinct_from(integration));
        if let Some(library) = unchanged.select(Library::as_select()).first(&mut conn).await.optional()? {
            return Ok(Some(library));
        }
        Ok(diesel::update(target)
            .set((
                libraries::integration_id.eq(integration),
                libraries::connection_id.eq(None::<Uuid>),
                libraries::drive_folder_id.eq(None::<String>),
                libraries::drive_id.eq(None::<String>),
                libraries::linked_at.eq(None::<DateTime<Utc>>),
                libraries::last_sync_error.eq(None::<String>),
                libraries::page_token.eq(None::<String>),
                libraries::updated_at.eq(db_now()),
            ))
            .returning(Library::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?)
    }

    /// Links the library to a connection of this tenant and a Drive folder. `None` when the library or the
    /// connection is not the tenant's.
    pub async fn link_library(&self, id: Uuid, link: LibraryLink<'_>) -> Result<Option<Library>, DbError> {
        let tenant = self.tenant;
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let owned: Option<Uuid> = connections::table
                .filter(connections::id.eq(link.connection_id))
                .filter(connections::tenant_id.eq(tenant.0))
                .select(connections::id)
                .first(conn)
                .await
                .optional()?;
            if owned.is_none() {
                return Ok(None);
            }
            Ok(diesel::update(libraries::table.filter(libraries::id.eq(id)).filter(libraries::tenant_id.eq(tenant.0)))
                .set((
                    libraries::connection_id.eq(link.connection_id),
                    libraries::drive_folder_id.eq(link.drive_folder_id),
                    libraries::drive_id.eq(link.drive_id),
                    libraries::linked_at.eq(db_now_nullable()),
                    libraries::last_sync_error.eq(None::<String>),
                    // Another folder (or the same one again) starts from a full listing.
                    libraries::page_token.eq(None::<String>),
                    libraries::updated_at.eq(db_now()),
                ))
                .returning(Library::as_returning())
                .get_result(conn)
                .await
                .optional()?)
        })
        .await
    }

    /// Unlinks the library from its connection; its files stay. False when it had none (or is not the tenant's).
    pub async fn unlink_library(&self, id: Uuid) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let changed = diesel::update(
            libraries::table
                .filter(libraries::id.eq(id))
                .filter(libraries::tenant_id.eq(self.tenant.0))
                .filter(libraries::connection_id.is_not_null()),
        )
        .set((
            libraries::connection_id.eq(None::<Uuid>),
            libraries::drive_folder_id.eq(None::<String>),
            libraries::drive_id.eq(None::<String>),
            libraries::linked_at.eq(None::<DateTime<Utc>>),
            libraries::updated_at.eq(db_now()),
        ))
        .execute(&mut conn)
        .await?;
        Ok(changed == 1)
    }
}

//! Library sync runs: starting one (a job of type `sync` and its queue message, one open run per library),
//! the worker's leased planning and the one transaction that records its plan (directories, renames, moves,
//! trash, restores, placeholders and transfers), and the run's end, which moves the library's feed position on
//! only once every transfer of the run has finished.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ferry_core::{ConnectionId, FileId, FileStatus, ItemId, ItemStatus, JobId, JobKind, JobStatus, TenantId};
use uuid::Uuid;

use crate::clock::{db_now, db_now_nullable, db_now_plus};
use crate::jobs::{Job, insert_job, insert_outbox};
use crate::libraries::Library;
use crate::schema::{files, folders, job_items, jobs, libraries, library_entries, sync_runs};
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sync_runs)]
pub struct SyncRun {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub library_id: Uuid,
    pub purge: bool,
    pub progress: Option<String>,
    pub planned: bool,
    pub finished: bool,
    pub attempts: i32,
    pub next_page_token: Option<String>,
    pub account_id: Option<String>,
    pub renamed_files: i32,
    pub restored_files: i32,
    pub deleted_files: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What asking for a run found.
#[derive(Debug)]
pub enum StartSync {
    Started(Box<Job>),
    /// The library already has an unfinished run: this job.
    Running(Uuid),
    /// The library has no connection.
    NotConnected,
}

/// One file a run could not bring over, for the run's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFileError {
    pub drive_file_id: String,
    pub name: String,
    pub code: String,
    pub message: String,
}

/// A run as its caller sees it: the job, and the counts once it has finished.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub run: SyncRun,
    pub job: Job,
    pub synced_files: i64,
    pub added_files: i64,
    pub updated_files: i64,
    pub deleted_files: i64,
    pub errors: Vec<SyncFileError>,
}

fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

impl TenantDb {
    /// Starts a run of `library` (a `sync` job, its run row and its queue message, in one transaction), or
    /// names the run already going. `command` encodes the queue message for the new job's id.
    pub async fn start_sync(
        &self,
        library: &Library,
        purge: bool,
        progress: Option<&str>,
        command_name: &str,
        command: impl FnOnce(JobId) -> Vec<u8>,
        traceparent: Option<&str>,
    ) -> Result<StartSync, DbError> {
        let Some(connection_id) = library.connection_id else { return Ok(StartSync::NotConnected) };
        let tenant = self.tenant;
        let job_id = JobId::new();
        let payload = command(job_id);
        let mut conn = self.conn().await?;
        let started = conn
            .transaction::<_, DbError, _>(async |conn| {
                let job = insert_job(conn, &job_id, tenant, ConnectionId(connection_id), JobKind::Sync, 0, None, None)
                    .await?;
                diesel::insert_into(sync_runs::table)
                    .values((
                        sync_runs::job_id.eq(job_id.0),
                        sync_runs::tenant_id.eq(tenant.0),
                        sync_runs::library_id.eq(library.id),
                        sync_runs::purge.eq(purge),
                        sync_runs::progress.eq(progress),
                    ))
                    .execute(conn)
                    .await?;
                insert_outbox(conn, command_name, vec![payload], traceparent).await?;
                Ok(job)
            })
            .await;
        match started {
            Ok(job) => Ok(StartSync::Started(Box::new(job))),
            Err(DbError::Query(err)) if is_unique_violation(&err) => {
                let running: Option<Uuid> = sync_runs::table
                    .filter(sync_runs::library_id.eq(library.id))
                    .filter(sync_runs::finished.eq(false))
                    .select(sync_runs::job_id)
                    .first(&mut conn)
                    .await
                    .optional()?;
                // Finished between the two statements: say so as a conflict with no job to name.
                Ok(StartSync::Running(running.unwrap_or_default()))
            }
            Err(err) => Err(err),
        }
    }

    /// The run of this tenant carried by `job_id`, with its counts.
    pub async fn sync_report(&self, job_id: Uuid) -> Result<Option<SyncReport>, DbError> {
        let mut conn = self.conn().await?;
        let found: Option<(SyncRun, Job)> = sync_runs::table
            .inner_join(jobs::table)
            .filter(sync_runs::job_id.eq(job_id))
            .filter(sync_runs::tenant_id.eq(self.tenant.0))
            .select((SyncRun::as_select(), Job::as_select()))
            .first(&mut conn)
            .await
            .optional()?;
        let Some((run, job)) = found else { return Ok(None) };
        /// (action, status, Drive id, name, error code, error message) of each transfer.
        type ItemRow = (Option<String>, String, Option<String>, String, Option<String>, Option<String>);
        let items: Vec<ItemRow> = job_items::table
            .filter(job_items::job_id.eq(job_id))
            .select((
                job_items::sync_action,
                job_items::status,
                job_items::drive_file_id,
                job_items::name,
                job_items::error_code,
                job_items::error_message,
            ))
            .load(&mut conn)
            .await?;
        let succeeded = |action: &str| {
            items
                .iter()
                .filter(|(a, status, ..)| a.as_deref() == Some(action) && status == ItemStatus::Succeeded.as_str())
                .count() as i64
        };
        let errors = items
            .iter()
            .filter(|(_, status, ..)| status == ItemStatus::Failed.as_str() || status == ItemStatus::Cancelled.as_str())
            .map(|(_, _, drive_id, name, code, message)| SyncFileError {
                drive_file_id: drive_id.clone().unwrap_or_default(),
                name: name.clone(),
                code: code.clone().unwrap_or_else(|| "failed".to_owned()),
                message: message.clone().unwrap_or_default(),
            })
            .collect();
        let synced_files: i64 = library_entries::table
            .inner_join(files::table.on(files::id.eq(library_entries::item_id)))
            .filter(library_entries::library_id.eq(run.library_id))
            .filter(library_entries::in_trash.eq(false))
            .filter(files::status.eq(FileStatus::Ready.as_str()))
            .filter(files::trashed_at.is_null())
            .count()
            .get_result(&mut conn)
            .await?;
        Ok(Some(SyncReport {
            added_files: succeeded("add") + i64::from(run.restored_files),
            updated_files: succeeded("update") + i64::from(run.renamed_files),
            deleted_files: i64::from(run.deleted_files),
            synced_files,
            errors,
            run,
            job,
        }))
    }

    /// The latest run the client named `progress`.
    pub async fn sync_by_progress(&self, progress: &str) -> Result<Option<Uuid>, DbError> {
        let mut conn = self.conn().await?;
        Ok(sync_runs::table
            .filter(sync_runs::tenant_id.eq(self.tenant.0))
            .filter(sync_runs::progress.eq(progress))
            .order(sync_runs::created_at.desc())
            .select(sync_runs::job_id)
            .first(&mut conn)
            .await
            .optional()?)
    }
}

/// The lease a worker holds on a run's planning: owner and attempt, as the claim wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncClaim {
    pub job_id: Uuid,
    pub owner: String,
    pub attempt: i32,
}

/// What the mirror recorded of one Drive item, with whether a file's content is there.
#[derive(Debug, Clone)]
pub struct LibraryEntry {
    pub drive_file_id: String,
    pub is_folder: bool,
    pub item_id: Uuid,
    pub drive_parent_id: String,
    pub name: String,
    pub content: Option<String>,
    pub in_trash: bool,
    /// A folder, or a file whose latest transfer arrived.
    pub ready: bool,
}

/// A claimed run with what planning needs.
#[derive(Debug, Clone)]
pub struct ClaimedSync {
    pub claim: SyncClaim,
    pub run: SyncRun,
    pub library: Library,
    pub job: Job,
    pub entries: Vec<LibraryEntry>,
}

#[derive(Debug)]
pub enum SyncClaimOutcome {
    Claimed(Box<ClaimedSync>),
    /// Already planned (a duplicate message), finished, or gone: nothing to do.
    Done,
    /// Another worker holds an unexpired lease on the planning.
    LeasedElsewhere,
}

/// One step of a plan, resolved for the database: parents are Drive ids (the linked folder's id stands for the
/// library's directory), and new transfers carry their ids and queue messages.
#[derive(Debug, Clone)]
pub enum SyncStep {
    CreateFolder {
        drive_id: String,
        parent: String,
        name: String,
    },
    UpdateFolder {
        drive_id: String,
        parent: String,
        name: String,
    },
    AddFile {
        drive_id: String,
        parent: String,
        name: String,
        content: Option<String>,
        mime_type: Option<String>,
        item_id: ItemId,
        file_id: FileId,
        command: Vec<u8>,
    },
    Transfer {
        drive_id: String,
        name: String,
        content: Option<String>,
        mime_type: Option<String>,
        item_id: ItemId,
        command: Vec<u8>,
    },
    UpdateFile {
        drive_id: String,
        parent: String,
        name: String,
    },
    Trash {
        drive_id: String,
    },
    Restore {
        drive_id: String,
        parent: String,
        name: String,
    },
}

/// A planned run, recorded in one transaction.
#[derive(Debug, Clone)]
pub struct SyncPlanRecord<'a> {
    /// The linked folder's Drive id (parents equal to it are the library's directory).
    pub root_drive_id: &'a str,
    pub steps: Vec<SyncStep>,
    pub next_page_token: &'a str,
    pub account_id: &'a str,
    pub renamed_files: i32,
    pub restored_files: i32,
    pub deleted_files: i32,
    /// Routing name of the transfers' messages.
    pub command_name: &'a str,
    pub traceparent: Option<&'a str>,
}

/// The run's fence: its row while this claim still holds it (by the database's clock).
macro_rules! fenced {
    ($claim:expr) => {
        sync_runs::table
            .filter(sync_runs::job_id.eq($claim.job_id))
            .filter(sync_runs::lease_owner.eq(&$claim.owner))
            .filter(sync_runs::attempts.eq($claim.attempt))
            .filter(sync_runs::planned.eq(false))
            .filter(sync_runs::finished.eq(false))
            .filter(sync_runs::lease_expires_at.gt(db_now_nullable()))
    };
}

impl Db {
    /// Takes the planning of the run carried by `job_id` for `owner`, unless it is planned, finished, or leased
    /// to someone else whose lease has not expired.
    pub async fn claim_sync_run(
        &self,
        job_id: Uuid,
        owner: &str,
        lease: Duration,
    ) -> Result<SyncClaimOutcome, DbError> {
        let mut conn = self.conn().await?;
        let owner = owner.to_owned();
        conn.transaction::<_, DbError, _>(async |conn| {
            let claimed: Option<SyncRun> = diesel::update(
                sync_runs::table
                    .filter(sync_runs::job_id.eq(job_id))
                    .filter(sync_runs::planned.eq(false))
                    .filter(sync_runs::finished.eq(false))
                    .filter(
                        sync_runs::lease_expires_at.is_null().or(sync_runs::lease_expires_at.lt(db_now_nullable())),
                    ),
            )
            .set((
                sync_runs::lease_owner.eq(&owner),
                sync_runs::lease_expires_at.eq(db_now_plus(lease)),
                sync_runs::attempts.eq(sync_runs::attempts + 1),
                sync_runs::updated_at.eq(db_now()),
            ))
            .returning(SyncRun::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(run) = claimed else {
                let open: Option<bool> = sync_runs::table
                    .find(job_id)
                    .select(sync_runs::planned.or(sync_runs::finished))
                    .first(conn)
                    .await
                    .optional()?;
                return Ok(match open {
                    Some(false) => SyncClaimOutcome::LeasedElsewhere,
                    _ => SyncClaimOutcome::Done,
                });
            };
            diesel::update(jobs::table.find(job_id).filter(jobs::status.eq(JobStatus::Pending.as_str())))
                .set((
                    jobs::status.eq(JobStatus::Processing.as_str()),
                    jobs::started_at.eq(db_now_nullable()),
                    jobs::updated_at.eq(db_now()),
                ))
                .execute(conn)
                .await?;
            let job = jobs::table.find(job_id).select(Job::as_select()).first(conn).await?;
            let library = libraries::table.find(run.library_id).select(Library::as_select()).first(conn).await?;
            let entries = load_entries(conn, run.library_id).await?;
            let claim = SyncClaim { job_id, owner: owner.clone(), attempt: run.attempts };
            Ok(SyncClaimOutcome::Claimed(Box::new(ClaimedSync { claim, run, library, job, entries })))
        })
        .await
    }

    /// Pushes the planning's lease forward; false when the claim no longer holds it (stop planning).
    pub async fn extend_sync_lease(&self, claim: &SyncClaim, lease: Duration) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let changed = diesel::update(fenced!(claim))
            .set(sync_runs::lease_expires_at.eq(db_now_plus(lease)))
            .execute(&mut conn)
            .await?;
        Ok(changed == 1)
    }

    /// Records a plan under the claim, in one transaction: the mirror's changes, the placeholders and transfers
    /// with their queue messages, and the run's position and counts. With no transfer the run ends here.
    /// Refused ([`DbError::LeaseLost`]) when the claim no longer holds the planning: nothing is written.
    pub async fn record_sync_plan(&self, claim: &SyncClaim, plan: SyncPlanRecord<'_>) -> Result<JobStatus, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let run: Option<SyncRun> = diesel::update(fenced!(claim))
                .set((
                    sync_runs::planned.eq(true),
                    sync_runs::next_page_token.eq(plan.next_page_token),
                    sync_runs::account_id.eq(plan.account_id),
                    sync_runs::renamed_files.eq(plan.renamed_files),
                    sync_runs::restored_files.eq(plan.restored_files),
                    sync_runs::deleted_files.eq(plan.deleted_files),
                    sync_runs::updated_at.eq(db_now()),
                ))
                .returning(SyncRun::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(run) = run else { return Err(DbError::LeaseLost { item_id: claim.job_id }) };
            let library = libraries::table.find(run.library_id).select(Library::as_select()).first(conn).await?;
            let job = jobs::table.find(run.job_id).select(Job::as_select()).first(conn).await?;
            let transfers = apply_steps(conn, &run, &library, &job, plan.root_drive_id, &plan.steps).await?;
            if run.purge {
                // What was put into the library by hand (no Drive item behind it) leaves it too.
                let extra_files = trash_untracked(conn, &library).await?;
                diesel::update(sync_runs::table.find(run.job_id))
                    .set(sync_runs::deleted_files.eq(sync_runs::deleted_files + extra_files))
                    .execute(conn)
                    .await?;
            }
            let commands: Vec<Vec<u8>> = plan
                .steps
                .iter()
                .filter_map(|step| match step {
                    SyncStep::AddFile { command, .. } | SyncStep::Transfer { command, .. } => Some(command.clone()),
                    _ => None,
                })
                .collect();
            if !commands.is_empty() {
                insert_outbox(conn, plan.command_name, commands, plan.traceparent).await?;
            }
            let status = if transfers == 0 { JobStatus::Completed } else { JobStatus::Processing };
            diesel::update(jobs::table.find(run.job_id))
                .set((
                    jobs::total_files.eq(transfers),
                    jobs::status.eq(status.as_str()),
                    jobs::updated_at.eq(db_now()),
                    jobs::completed_at.eq(if transfers == 0 {
                        diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>("now()")
                    } else {
                        diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>("NULL")
                    }),
                ))
                .execute(conn)
                .await?;
            if transfers == 0 {
                finish_run(conn, run.job_id).await?;
            }
            Ok(status)
        })
        .await
    }

    /// Ends a run whose planning cannot succeed (the connection lost its grant, the folder is gone): the job
    /// fails with `message`, which the library shows as `lastSyncError`. Refused when the claim is stale.
    pub async fn fail_sync_run(&self, claim: &SyncClaim, code: &str, message: &str) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let run: Option<SyncRun> = diesel::update(fenced!(claim))
                .set((
                    sync_runs::planned.eq(true),
                    sync_runs::finished.eq(true),
                    sync_runs::error.eq(format!("{code}: {message}")),
                    sync_runs::updated_at.eq(db_now()),
                ))
                .returning(SyncRun::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(run) = run else { return Err(DbError::LeaseLost { item_id: claim.job_id }) };
            diesel::update(jobs::table.find(run.job_id))
                .set((
                    jobs::status.eq(JobStatus::Failed.as_str()),
                    jobs::error.eq(message),
                    jobs::completed_at.eq(db_now_nullable()),
                    jobs::updated_at.eq(db_now()),
                ))
                .execute(conn)
                .await?;
            diesel::update(libraries::table.find(run.library_id))
                .set((libraries::last_sync_error.eq(message), libraries::updated_at.eq(db_now())))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// The entries of a library (for tests and tools; planning gets them with its claim).
    pub async fn library_entries(&self, library_id: Uuid) -> Result<Vec<LibraryEntry>, DbError> {
        let mut conn = self.conn().await?;
        load_entries(&mut conn, library_id).await
    }
}

async fn load_entries(conn: &mut AsyncPgConnection, library_id: Uuid) -> Result<Vec<LibraryEntry>, DbError> {
    type Row = (
        String,
        bool,
        Uuid,
        String,
        String,
        Option<String>,
        bool,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<Uuid>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = library_entries::table
        .left_join(files::table.on(files::id.eq(library_entries::item_id)))
        .left_join(folders::table.on(folders::id.eq(library_entries::item_id)))
        .filter(library_entries::library_id.eq(library_id))
        .select((
            library_entries::drive_file_id,
            library_entries::is_folder,
            library_entries::item_id,
            library_entries::drive_parent_id,
            library_entries::name,
            library_entries::content,
            library_entries::in_trash,
            files::status.nullable(),
            files::trashed_at.nullable(),
            folders::id.nullable(),
            folders::trashed_at.nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                drive_file_id,
                is_folder,
                item_id,
                drive_parent_id,
                name,
                content,
                in_trash,
                status,
                file_bin,
                dir,
                dir_bin,
            )| {
                // An item removed from the store by hand (trashed, or deleted forever) is not in step with Drive:
                // the next run that sees the Drive item puts it back.
                let ready = if is_folder {
                    dir.is_some() && dir_bin.is_none()
                } else {
                    status.as_deref() == Some(FileStatus::Ready.as_str()) && file_bin.is_none()
                };
                LibraryEntry { ready, drive_file_id, is_folder, item_id, drive_parent_id, name, content, in_trash }
            },
        )
        .collect())
}

/// A file's row, recreated as a placeholder when it was deleted forever by hand; untrashed otherwise. Returns
/// the file item to transfer into.
async fn file_to_refill(
    conn: &mut AsyncPgConnection,
    run: &SyncRun,
    job: &Job,
    entry: &LibraryEntry,
    parent_dir: Uuid,
) -> Result<Uuid, DbError> {
    let revived = diesel::update(files::table.find(entry.item_id))
        .set((files::trashed_at.eq(None::<DateTime<Utc>>), files::folder_id.eq(Some(parent_dir))))
        .execute(conn)
        .await?;
    if revived == 1 {
        return Ok(entry.item_id);
    }
    let id = Uuid::now_v7();
    diesel::insert_into(files::table)
        .values((
            files::id.eq(id),
            files::tenant_id.eq(run.tenant_id),
            files::name.eq(&entry.name),
            files::status.eq(FileStatus::Pending.as_str()),
            files::folder_id.eq(Some(parent_dir)),
            files::tags.eq(Vec::<String>::new()),
            files::source_connection_id.eq(job.connection_id),
            files::source_file_id.eq(&entry.drive_file_id),
            files::import_job_id.eq(job.id),
        ))
        .execute(conn)
        .await?;
    diesel::update(
        library_entries::table
            .filter(library_entries::library_id.eq(run.library_id))
            .filter(library_entries::drive_file_id.eq(&entry.drive_file_id)),
    )
    .set(library_entries::item_id.eq(id))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Applies the steps in order; returns how many transfers they start.
async fn apply_steps(
    conn: &mut AsyncPgConnection,
    run: &SyncRun,
    library: &Library,
    job: &Job,
    root_drive_id: &str,
    steps: &[SyncStep],
) -> Result<i32, DbError> {
    let tenant = TenantId(run.tenant_id);
    let entries: HashMap<String, LibraryEntry> =
        load_entries(conn, library.id).await?.into_iter().map(|e| (e.drive_file_id.clone(), e)).collect();
    let mut directories: HashMap<String, Uuid> =
        entries.values().filter(|e| e.is_folder).map(|e| (e.drive_file_id.clone(), e.item_id)).collect();
    directories.insert(root_drive_id.to_owned(), library.root_folder_id);
    let directory = |directories: &HashMap<String, Uuid>, parent: &str| {
        directories
            .get(parent)
            .copied()
            .ok_or_else(|| DbError::Corrupt(format!("sync plan names parent {parent} before creating it")))
    };
    let item_of = |drive_id: &str| {
        entries
            .get(drive_id)
            .map(|e| e.item_id)
            .ok_or_else(|| DbError::Corrupt(format!("sync plan names {drive_id}, which the library never had")))
    };
    let entry = library_entries::table.filter(library_entries::library_id.eq(library.id));
    let mut transfers = 0i32;
    let mut position = 0i32;
    for step in steps {
        match step {
            SyncStep::CreateFolder { drive_id, parent, name } => {
                let parent_dir = directory(&directories, parent)?;
                let id = new_directory(conn, tenant, name, parent_dir).await?;
                upsert_entry(conn, run, drive_id, true, id, parent, name, None).await?;
                directories.insert(drive_id.clone(), id);
            }
            SyncStep::UpdateFolder { drive_id, parent, name } | SyncStep::Restore { drive_id, parent, name }
                if entries.get(drive_id).is_some_and(|e| e.is_folder) =>
            {
                let id = item_of(drive_id)?;
                let parent_dir = directory(&directories, parent)?;
                let updated = diesel::update(folders::table.find(id))
                    .set((
                        folders::name.eq(name),
                        folders::parent_id.eq(Some(parent_dir)),
                        folders::trashed_at.eq(None::<DateTime<Utc>>),
                        folders::updated_at.eq(db_now()),
                    ))
                    .execute(conn)
                    .await?;
                if updated == 0 {
                    // Deleted forever by hand: the folder is made again.
                    let id = new_directory(conn, tenant, name, parent_dir).await?;
                    upsert_entry(conn, run, drive_id, true, id, parent, name, None).await?;
                    directories.insert(drive_id.clone(), id);
                    continue;
                }
                record_position(conn, library.id, drive_id, parent, name).await?;
            }
            SyncStep::UpdateFolder { drive_id, .. } => {
                return Err(DbError::Corrupt(format!("sync plan updates {drive_id}, which is not a folder")));
            }
            SyncStep::AddFile { drive_id, parent, name, content, mime_type, item_id, file_id, .. } => {
                let parent_dir = directory(&directories, parent)?;
                diesel::insert_into(files::table)
                    .values((
                        files::id.eq(file_id.0),
                        files::tenant_id.eq(tenant.0),
                        files::name.eq(name),
                        files::mime_type.eq(mime_type),
                        files::status.eq(FileStatus::Pending.as_str()),
                        files::folder_id.eq(Some(parent_dir)),
                        files::tags.eq(Vec::<String>::new()),
                        files::source_connection_id.eq(job.connection_id),
                        files::source_file_id.eq(drive_id),
                        files::import_job_id.eq(job.id),
                    ))
                    .execute(conn)
                    .await?;
                insert_item(conn, job, *item_id, file_id.0, drive_id, name, mime_type.as_deref(), "add", position)
                    .await?;
                position += 1;
                transfers += 1;
                upsert_entry(conn, run, drive_id, false, file_id.0, parent, name, content.as_deref()).await?;
            }
            SyncStep::Transfer { drive_id, name, content, mime_type, item_id, .. } => {
                let recorded = entries
                    .get(drive_id)
                    .ok_or_else(|| DbError::Corrupt(format!("sync plan transfers {drive_id}, which it never had")))?;
                let parent_dir = directory(&directories, &recorded.drive_parent_id)?;
                let file_id = file_to_refill(conn, run, job, recorded, parent_dir).await?;
                // A file that never had content (its first transfer failed or was cancelled) is still an add.
                let had_content: Option<Uuid> =
                    files::table.find(file_id).select(files::last_version_id).first(conn).await?;
                let action = if had_content.is_some() { "update" } else { "add" };
                insert_item(conn, job, *item_id, file_id, drive_id, name, mime_type.as_deref(), action, position)
                    .await?;
                position += 1;
                transfers += 1;
                diesel::update(entry.filter(library_entries::drive_file_id.eq(drive_id)))
                    .set(library_entries::content.eq(content))
                    .execute(conn)
                    .await?;
            }
            SyncStep::UpdateFile { drive_id, parent, name } | SyncStep::Restore { drive_id, parent, name } => {
                let id = item_of(drive_id)?;
                let parent_dir = directory(&directories, parent)?;
                diesel::update(files::table.find(id))
                    .set((
                        files::name.eq(name),
                        files::folder_id.eq(Some(parent_dir)),
                        files::trashed_at.eq(None::<DateTime<Utc>>),
                        files::updated_at.eq(db_now()),
                    ))
                    .execute(conn)
                    .await?;
                record_position(conn, library.id, drive_id, parent, name).await?;
            }
            SyncStep::Trash { drive_id } => {
                let id = item_of(drive_id)?;
                if entries.get(drive_id).is_some_and(|e| e.is_folder) {
                    diesel::update(folders::table.find(id).filter(folders::trashed_at.is_null()))
                        .set((folders::trashed_at.eq(db_now_nullable()), folders::updated_at.eq(db_now())))
                        .execute(conn)
                        .await?;
                } else {
                    diesel::update(files::table.find(id).filter(files::trashed_at.is_null()))
                        .set((files::trashed_at.eq(db_now_nullable()), files::updated_at.eq(db_now())))
                        .execute(conn)
                        .await?;
                }
                diesel::update(entry.filter(library_entries::drive_file_id.eq(drive_id)))
                    .set(library_entries::in_trash.eq(true))
                    .execute(conn)
                    .await?;
            }
        }
    }
    Ok(transfers)
}

/// Trashes the live items below the library's directory that no entry records; returns how many were files.
async fn trash_untracked(conn: &mut AsyncPgConnection, library: &Library) -> Result<i32, DbError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        files: i64,
    }
    let tree = "WITH RECURSIVE tree(id) AS ( \
                   SELECT id FROM folders WHERE id = $1 AND tenant_id = $2 \
                   UNION SELECT f.id FROM folders f JOIN tree t ON f.parent_id = t.id \
                     WHERE f.tenant_id = $2 AND f.trashed_at IS NULL)";
    let tracked = "SELECT item_id FROM library_entries WHERE library_id = $3";
    let files: Count = diesel::sql_query(format!(
        "{tree}, binned AS (UPDATE files SET trashed_at = now(), updated_at = now() \
           WHERE tenant_id = $2 AND trashed_at IS NULL AND folder_id IN (SELECT id FROM tree) \
             AND id NOT IN ({tracked}) RETURNING id) \
         SELECT count(*) AS files FROM binned"
    ))
    .bind::<diesel::sql_types::Uuid, _>(library.root_folder_id)
    .bind::<diesel::sql_types::Uuid, _>(library.tenant_id)
    .bind::<diesel::sql_types::Uuid, _>(library.id)
    .get_result(conn)
    .await?;
    diesel::sql_query(format!(
        "{tree} UPDATE folders SET trashed_at = now(), updated_at = now() \
           WHERE tenant_id = $2 AND trashed_at IS NULL AND id IN (SELECT id FROM tree) AND id <> $1 \
             AND id NOT IN ({tracked})"
    ))
    .bind::<diesel::sql_types::Uuid, _>(library.root_folder_id)
    .bind::<diesel::sql_types::Uuid, _>(library.tenant_id)
    .bind::<diesel::sql_types::Uuid, _>(library.id)
    .execute(conn)
    .await?;
    Ok(i32::try_from(files.files).unwrap_or(i32::MAX))
}

/// A directory of the library, made for a Drive folder.
async fn new_directory(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    name: &str,
    parent_dir: Uuid,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    diesel::insert_into(folders::table)
        .values((
            folders::id.eq(id),
            folders::tenant_id.eq(tenant.0),
            folders::name.eq(name),
            folders::parent_id.eq(Some(parent_dir)),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Records where a Drive item now is (and that it is out of the mirror's trash).
async fn record_position(
    conn: &mut AsyncPgConnection,
    library_id: Uuid,
    drive_id: &str,
    parent: &str,
    name: &str,
) -> Result<(), DbError> {
    diesel::update(
        library_entries::table
            .filter(library_entries::library_id.eq(library_id))
            .filter(library_entries::drive_file_id.eq(drive_id)),
    )
    .set((
        library_entries::drive_parent_id.eq(parent),
        library_entries::name.eq(name),
        library_entries::in_trash.eq(false),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn upsert_entry(
    conn: &mut AsyncPgConnection,
    run: &SyncRun,
    drive_id: &str,
    is_folder: bool,
    item_id: Uuid,
    parent: &str,
    name: &str,
    content: Option<&str>,
) -> Result<(), DbError> {
    diesel::insert_into(library_entries::table)
        .values((
            library_entries::library_id.eq(run.library_id),
            library_entries::drive_file_id.eq(drive_id),
            library_entries::tenant_id.eq(run.tenant_id),
            library_entries::is_folder.eq(is_folder),
            library_entries::item_id.eq(item_id),
            library_entries::drive_parent_id.eq(parent),
            library_entries::name.eq(name),
            library_entries::content.eq(content),
            library_entries::in_trash.eq(false),
        ))
        .on_conflict((library_entries::library_id, library_entries::drive_file_id))
        .do_update()
        .set((
            library_entries::is_folder.eq(is_folder),
            library_entries::item_id.eq(item_id),
            library_entries::drive_parent_id.eq(parent),
            library_entries::name.eq(name),
            library_entries::content.eq(content),
            library_entries::in_trash.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_item(
    conn: &mut AsyncPgConnection,
    job: &Job,
    item_id: ItemId,
    file_id: Uuid,
    drive_id: &str,
    name: &str,
    mime_type: Option<&str>,
    action: &str,
    position: i32,
) -> Result<(), DbError> {
    diesel::insert_into(job_items::table)
        .values((
            job_items::id.eq(item_id.0),
            job_items::job_id.eq(job.id),
            job_items::tenant_id.eq(job.tenant_id),
            job_items::position.eq(position),
            job_items::file_id.eq(file_id),
            job_items::drive_file_id.eq(Some(drive_id)),
            job_items::name.eq(name),
            job_items::mime_type.eq(mime_type),
            job_items::status.eq(ItemStatus::Pending.as_str()),
            job_items::sync_action.eq(Some(action)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends the run a `sync` job carries, if it does: transfers that did not arrive leave their entry without
/// content (the next run asks again), and the library's feed position moves to where this run's changes end.
pub(crate) async fn finish_run(conn: &mut AsyncPgConnection, job_id: Uuid) -> Result<(), DbError> {
    let run: Option<SyncRun> = diesel::update(sync_runs::table.find(job_id).filter(sync_runs::finished.eq(false)))
        .set((sync_runs::finished.eq(true), sync_runs::updated_at.eq(db_now())))
        .returning(SyncRun::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    // Not a sync job, or a run cancelled before it was planned: the library stays where it was.
    let Some(run) = run.filter(|run| run.planned) else { return Ok(()) };
    let unfinished = job_items::table
        .filter(job_items::job_id.eq(job_id))
        .filter(job_items::status.ne(ItemStatus::Succeeded.as_str()))
        .select(job_items::file_id);
    diesel::update(
        library_entries::table
            .filter(library_entries::library_id.eq(run.library_id))
            .filter(library_entries::item_id.eq_any(unfinished)),
    )
    .set(library_entries::content.eq(None::<String>))
    .execute(conn)
    .await?;
    diesel::update(libraries::table.find(run.library_id))
        .set((
            libraries::page_token.eq(run.next_page_token),
            libraries::synced_account_id.eq(run.account_id),
            libraries::last_sync_at.eq(db_now_nullable()),
            libraries::last_sync_error.eq(None::<String>),
            libraries::updated_at.eq(db_now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A library the scheduler found due.
#[derive(Debug, QueryableByName)]
struct DueLibrary {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    connection_id: Uuid,
}

/// Advisory lock key of the scheduler: whoever holds it for the transaction is the leader of that pass.
const SCHEDULER_LOCK: i64 = 0x6665_7272_7973_796e; // "ferrysyn"

impl Db {
    /// One pass of the sync scheduler: if no other process is making one (a transaction-scoped advisory lock),
    /// starts a run for each library whose `sync_interval_secs` has passed since its last run began (whatever that
    /// run's outcome, so a failing library is retried once per interval, never in a loop), and whose connection
    /// is usable. A library whose connection was disconnected or needs the account again gets that as its
    /// `last_sync_error` and waits. Returns the runs started.
    pub async fn start_due_syncs(
        &self,
        command_name: &str,
        command: impl Fn(TenantId, JobId) -> Vec<u8> + Send + Sync,
    ) -> Result<usize, DbError> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let leader: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind::<diesel::sql_types::BigInt, _>(SCHEDULER_LOCK)
                .get_result(conn)
                .await?;
            if !leader.locked {
                return Ok(0);
            }
            diesel::sql_query(
                "UPDATE libraries l SET last_sync_error = \
                   'the connection was disconnected or needs the account connected again; scheduled syncs wait', \
                   updated_at = now() \
                 FROM connections c WHERE c.id = l.connection_id AND l.sync_interval_secs IS NOT NULL \
                   AND (NOT c.is_active OR c.needs_reauth) AND l.last_sync_error IS NULL",
            )
            .execute(conn)
            .await?;
            let due: Vec<DueLibrary> = diesel::sql_query(
                "SELECT l.id, l.tenant_id, l.connection_id FROM libraries l \
                 JOIN connections c ON c.id = l.connection_id \
                 WHERE l.sync_interval_secs IS NOT NULL AND c.is_active AND NOT c.needs_reauth \
                   AND NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.library_id = l.id \
                     AND (NOT r.finished OR r.created_at > now() - make_interval(secs => l.sync_interval_secs))) \
                 ORDER BY l.last_sync_at NULLS FIRST LIMIT 100 \
                 FOR UPDATE OF l SKIP LOCKED",
            )
            .load(conn)
            .await?;
            for library in &due {
                let job_id = JobId::new();
                let tenant = TenantId(library.tenant_id);
                insert_job(conn, &job_id, tenant, ConnectionId(library.connection_id), JobKind::Sync, 0, None, None)
                    .await?;
                diesel::insert_into(sync_runs::table)
                    .values((
                        sync_runs::job_id.eq(job_id.0),
                        sync_runs::tenant_id.eq(tenant.0),
                        sync_runs::library_id.eq(library.id),
                    ))
                    .execute(conn)
                    .await?;
                insert_outbox(conn, command_name, vec![command(tenant, job_id)], None).await?;
            }
            Ok(due.len())
        })
        .await
    }
}

//! A library sync run's planning, in the importer: claim the run (a lease, like an item's), read Drive (the
//! changes feed since the library's position, or a full listing of the folder), decide with `ferry-sync`, and
//! record the plan with its transfers in one fenced transaction. The transfers are import items, so they go
//! through the importer's own pipeline (leases, retries, pacing); the run ends with the last of them.

use std::collections::HashSet;

use ferry_core::{ConnectionId, FileId, ItemId, JobId};
use ferry_db::DbError;
use ferry_db::sync::{ClaimedSync, SyncClaimOutcome, SyncPlanRecord, SyncStep};
use ferry_drive::{DriveError, DriveFile};
use ferry_messages::Message;
use ferry_queue::{CommandKind, Delivery, Outcome};
use ferry_sync::{Action, Input, Observation, Seen};
use uuid::Uuid;

use crate::import::with_token_retry;
use crate::outcome::ItemFailure;
use crate::worker::TransferContext;

/// Page size of listings and of the changes feed.
const PAGE_SIZE: u32 = 1000;
/// Files whose last transfer did not arrive, asked about again in one incremental run (the rest wait for the next).
const MAX_RETRIED_PER_RUN: usize = 1000;
/// A folder tree deeper than this is not listed further (Drive allows about 100 levels).
const MAX_DEPTH: usize = 200;

/// Handles one `sync.run` message and says how to settle it.
pub async fn handle_sync_run(ctx: &TransferContext, delivery: Delivery) -> Outcome {
    let message = match ferry_messages::decode_sync_run(&delivery.payload) {
        Ok(message) => message,
        Err(err) => {
            tracing::error!(error = %err, "dead-lettering an undecodable sync run");
            return Outcome::Reject;
        }
    };
    let Ok(job_id) = Uuid::parse_str(&message.job_id) else {
        tracing::error!(job_id = %message.job_id, "dead-lettering a sync run with an invalid job id");
        return Outcome::Reject;
    };
    let retry_later = || Outcome::Retry(crate::limits::item_retry_delay(delivery.retries.saturating_add(1)));
    let claimed = match ctx.db.claim_sync_run(job_id, &ctx.worker_id, ctx.lease).await {
        Ok(SyncClaimOutcome::Claimed(claimed)) => claimed,
        Ok(SyncClaimOutcome::Done) => return Outcome::Ack,
        // Its holder may die: come back after its lease could have expired, and take over then.
        Ok(SyncClaimOutcome::LeasedElsewhere) => return retry_later(),
        Err(err) => {
            tracing::warn!(%job_id, error = %err, "cannot claim a sync run; retrying");
            return retry_later();
        }
    };
    // The lease is renewed while planning runs, and the renewal ends with it.
    let heartbeat = {
        let db = ctx.db.clone();
        let claim = claimed.claim.clone();
        let lease = ctx.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match db.extend_sync_lease(&claim, lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(err) => tracing::warn!(error = %err, "cannot extend a sync run's lease"),
                }
            }
        })
    };
    let outcome = plan_and_record(ctx, &claimed).await;
    heartbeat.abort();
    match outcome {
        Ok(()) => Outcome::Ack,
        Err(PlanFailure::Retry(reason)) => {
            tracing::warn!(%job_id, %reason, "sync planning failed for now; retrying");
            retry_later()
        }
        Err(PlanFailure::Fail { code, message }) => {
            tracing::warn!(%job_id, code, %message, "sync run failed");
            match ctx.db.fail_sync_run(&claimed.claim, code, &message).await {
                Ok(()) | Err(DbError::LeaseLost { .. }) => Outcome::Ack,
                Err(_) => retry_later(),
            }
        }
        Err(PlanFailure::LeaseLost) => {
            tracing::warn!(%job_id, "another worker took this sync run over; dropping this plan");
            Outcome::Ack
        }
    }
}

enum PlanFailure {
    Retry(String),
    Fail { code: &'static str, message: String },
    LeaseLost,
}

impl From<ItemFailure> for PlanFailure {
    fn from(failure: ItemFailure) -> Self {
        match failure {
            ItemFailure::NeedsReauthorization => PlanFailure::Fail {
                code: "connection_needs_reauthorization",
                message: "the cloud account revoked access; connect it again".to_owned(),
            },
            ItemFailure::Permanent { code, message } => PlanFailure::Fail { code, message },
            ItemFailure::Transient { code, message } => PlanFailure::Retry(format!("{code}: {message}")),
            ItemFailure::LeaseLost => PlanFailure::LeaseLost,
        }
    }
}

/// What identifies a Drive item's content for the mirror: md5 for binary files, the version for Workspace
/// files (exports have no checksum), nothing for folders.
fn content_of(file: &DriveFile) -> Option<String> {
    if file.is_folder() {
        None
    } else if let Some(md5) = &file.md5_checksum {
        Some(md5.clone())
    } else {
        file.version.map(|v| format!("v{v}"))
    }
}

fn seen(file: &DriveFile) -> Seen {
    Seen {
        drive_id: file.id.clone(),
        is_folder: file.is_folder(),
        parents: file.parents.clone(),
        name: file.name.clone(),
        trashed: file.trashed,
        content: content_of(file),
    }
}

async fn plan_and_record(ctx: &TransferContext, claimed: &ClaimedSync) -> Result<(), PlanFailure> {
    let library = &claimed.library;
    let connection = ConnectionId(claimed.job.connection_id);
    let Some(folder) = library.drive_folder_id.clone() else {
        return Err(PlanFailure::Fail { code: "not_connected", message: "the library has no connection".to_owned() });
    };
    let drive_id = library.drive_id.clone();
    let (_, about) = with_token_retry(ctx, connection, |token| async move { ctx.drive.about(&token).await }).await?;
    let account_id = about.account_id.unwrap_or_default();
    let root = match with_token_retry(ctx, connection, |token| {
        let folder = folder.clone();
        async move { ctx.drive.get_file(&token, &folder).await }
    })
    .await
    {
        Ok((_, root)) if root.is_folder() && !root.trashed => root,
        Ok(_) | Err(ItemFailure::Permanent { code: "drive_not_found", .. }) => {
            return Err(PlanFailure::Fail {
                code: "folder_not_found",
                message: format!("the linked Drive folder {folder} is gone or in Drive's trash; link another"),
            });
        }
        Err(err) => return Err(err.into()),
    };

    let mut full = claimed.run.purge
        || library.page_token.is_none()
        || library.synced_account_id.as_deref().is_some_and(|synced| synced != account_id);
    let mut observed: Vec<Observation> = Vec::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut next_token = String::new();
    if !full && let Some(position) = library.page_token.clone() {
        match read_changes(ctx, connection, &position, drive_id.as_deref()).await {
            Ok((changes, start)) => {
                observed = changes;
                next_token = start;
            }
            // An expired or foreign position: start over from a full listing.
            Err(PlanFailure::Fail { code: "invalid_page_token", .. }) => full = true,
            Err(err) => return Err(err),
        }
    }
    if !full {
        // Transfers that did not arrive last time are asked for again, though the feed has nothing new on them.
        let reported: HashSet<String> = observed
            .iter()
            .map(|o| match o {
                Observation::Present(seen) => seen.drive_id.clone(),
                Observation::Removed(id) => id.clone(),
            })
            .collect();
        let unfinished = claimed
            .entries
            .iter()
            .filter(|e| !e.is_folder && !e.ready && !e.in_trash && !reported.contains(&e.drive_file_id))
            .take(MAX_RETRIED_PER_RUN);
        for entry in unfinished {
            let id = entry.drive_file_id.clone();
            match with_token_retry(ctx, connection, |token| {
                let id = id.clone();
                async move { ctx.drive.get_file(&token, &id).await }
            })
            .await
            {
                Ok((_, file)) => observed.push(Observation::Present(seen(&file))),
                Err(ItemFailure::Permanent { code: "drive_not_found", .. }) => observed.push(Observation::Removed(id)),
                Err(err) => return Err(err.into()),
            }
        }
    }
    if full {
        // Taken before listing: whatever changes during the listing is in the next run's feed.
        let (_, start) = with_token_retry(ctx, connection, |token| {
            let drive_id = drive_id.clone();
            async move { ctx.drive.start_page_token(&token, drive_id.as_deref()).await }
        })
        .await?;
        next_token = start;
        observed = list_tree(ctx, connection, &root.id, &mut listed).await?;
    }

    let recorded: Vec<ferry_sync::Recorded> = claimed
        .entries
        .iter()
        .map(|e| ferry_sync::Recorded {
            drive_id: e.drive_file_id.clone(),
            is_folder: e.is_folder,
            parent: e.drive_parent_id.clone(),
            name: e.name.clone(),
            content: e.content.clone(),
            in_trash: e.in_trash,
            ready: e.ready,
        })
        .collect();
    // Folders that came in with the changes are listed whole, then planned again, until nothing new arrives.
    let plan = loop {
        let plan = ferry_sync::plan(Input {
            root: &root.id,
            recorded: &recorded,
            observed: &observed,
            full,
            purge: claimed.run.purge,
        });
        let unlisted: Vec<String> = plan.needs_listing.iter().filter(|id| !listed.contains(*id)).cloned().collect();
        if unlisted.is_empty() {
            break plan;
        }
        for folder in unlisted {
            let below = list_tree(ctx, connection, &folder, &mut listed).await?;
            observed.extend(below);
        }
    };

    let files: std::collections::HashMap<&str, &Seen> = observed
        .iter()
        .filter_map(|o| match o {
            Observation::Present(seen) => Some((seen.drive_id.as_str(), seen)),
            Observation::Removed(_) => None,
        })
        .collect();
    let tenant_id = claimed.job.tenant_id.to_string();
    let job_id = claimed.job.id.to_string();
    let command = |item_id: ItemId| {
        ferry_messages::ImportItem {
            job_id: job_id.clone(),
            item_id: item_id.0.to_string(),
            tenant_id: tenant_id.clone(),
            traceparent: String::new(),
        }
        .encode_to_vec()
    };
    let steps: Vec<SyncStep> = plan
        .actions
        .iter()
        .map(|action| match action.clone() {
            Action::CreateFolder { drive_id, parent, name } => SyncStep::CreateFolder { drive_id, parent, name },
            Action::UpdateFolder { drive_id, parent, name } => SyncStep::UpdateFolder { drive_id, parent, name },
            Action::AddFile { drive_id, parent, name, content } => {
                let item_id = ItemId::new();
                SyncStep::AddFile {
                    mime_type: None,
                    command: command(item_id),
                    file_id: FileId::new(),
                    item_id,
                    drive_id,
                    parent,
                    name,
                    content,
                }
            }
            Action::Transfer { drive_id, content } => {
                let item_id = ItemId::new();
                let name = files.get(drive_id.as_str()).map(|s| s.name.clone()).unwrap_or_default();
                SyncStep::Transfer { mime_type: None, command: command(item_id), item_id, drive_id, name, content }
            }
            Action::UpdateFile { drive_id, parent, name } => SyncStep::UpdateFile { drive_id, parent, name },
            Action::Trash { drive_id } => SyncStep::Trash { drive_id },
            Action::Restore { drive_id, parent, name } => SyncStep::Restore { drive_id, parent, name },
        })
        .collect();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let record = SyncPlanRecord {
        root_drive_id: &root.id,
        steps,
        next_page_token: &next_token,
        account_id: &account_id,
        renamed_files: count(plan.renamed_files),
        restored_files: count(plan.restored_files),
        deleted_files: count(plan.deleted_files),
        command_name: CommandKind::ImportItem.routing_key(),
        traceparent: None,
    };
    match ctx.db.record_sync_plan(&claimed.claim, record).await {
        Ok(status) => {
            tracing::info!(job_id = %JobId(claimed.job.id), transfers = plan.transfers(), ?status, full, "sync run planned");
            Ok(())
        }
        Err(DbError::LeaseLost { .. }) => Err(PlanFailure::LeaseLost),
        Err(err) => Err(PlanFailure::Retry(err.to_string())),
    }
}

/// Every change since `position`, page by page, with the position after the last one.
async fn read_changes(
    ctx: &TransferContext,
    connection: ConnectionId,
    position: &str,
    drive_id: Option<&str>,
) -> Result<(Vec<Observation>, String), PlanFailure> {
    let mut observed = Vec::new();
    let mut page = position.to_owned();
    loop {
        let result = with_token_retry(ctx, connection, |token| {
            let page = page.clone();
            let drive_id = drive_id.map(str::to_owned);
            async move {
                match ctx.drive.list_changes(&token, &page, drive_id.as_deref(), PAGE_SIZE).await {
                    Err(DriveError::BadRequest { .. } | DriveError::NotFound(_)) => Ok(None),
                    other => other.map(Some),
                }
            }
        })
        .await?;
        let (_, list) = result;
        let Some(list) = list else {
            return Err(PlanFailure::Fail {
                code: "invalid_page_token",
                message: "the changes feed position is no longer valid".to_owned(),
            });
        };
        for change in list.changes {
            match change.file {
                Some(file) if !change.removed => observed.push(Observation::Present(seen(&file))),
                _ => observed.push(Observation::Removed(change.file_id)),
            }
        }
        match (list.next_page_token, list.new_start_page_token) {
            (Some(next), _) => page = next,
            (None, Some(start)) => return Ok((observed, start)),
            (None, None) => {
                return Err(PlanFailure::Retry("the changes feed ended without a new start position".to_owned()));
            }
        }
    }
}

/// The folder's whole tree (not trashed), breadth first; folders already listed in this run are skipped.
async fn list_tree(
    ctx: &TransferContext,
    connection: ConnectionId,
    top: &str,
    listed: &mut HashSet<String>,
) -> Result<Vec<Observation>, PlanFailure> {
    let mut observed = Vec::new();
    let mut level = vec![top.to_owned()];
    for _ in 0..MAX_DEPTH {
        let mut next_level = Vec::new();
        for folder in level {
            if !listed.insert(folder.clone()) {
                continue;
            }
            let mut page: Option<String> = None;
            loop {
                let (_, list) = with_token_retry(ctx, connection, |token| {
                    let folder = folder.clone();
                    let page = page.clone();
                    async move { ctx.drive.list_folder(&token, &folder, page.as_deref(), PAGE_SIZE).await }
                })
                .await?;
                for file in &list.files {
                    if file.is_folder() {
                        next_level.push(file.id.clone());
                    }
                    observed.push(Observation::Present(seen(file)));
                }
                match list.next_page_token {
                    Some(next) => page = Some(next),
                    None => break,
                }
            }
        }
        if next_level.is_empty() {
            return Ok(observed);
        }
        level = next_level;
    }
    Ok(observed)
}

/// Starts due scheduled syncs every `every` until `shutdown` (one importer replica at a time does a pass; see
/// [`ferry_db::Db::start_due_syncs`]).
pub async fn run_sync_scheduler(
    db: ferry_db::Db,
    every: std::time::Duration,
    shutdown: ferry_queue::CancellationToken,
) {
    loop {
        let encode = |tenant: ferry_core::TenantId, job: JobId| {
            ferry_messages::SyncRun {
                tenant_id: tenant.0.to_string(),
                job_id: job.0.to_string(),
                traceparent: String::new(),
            }
            .encode_to_vec()
        };
        match db.start_due_syncs(ferry_messages::SYNC_RUN_COMMAND, encode).await {
            Ok(0) => {}
            Ok(started) => tracing::info!(started, "scheduled library syncs started"),
            Err(err) => tracing::warn!(error = %err, "sync scheduler pass failed; trying again next time"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

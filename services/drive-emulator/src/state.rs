//! The emulator's in-memory world: users, files, OAuth codes/grants/tokens, upload sessions.
//!
//! One mutex guards the data; handlers take it for short, synchronous sections only (never
//! across an await), and hash large contents before taking it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::Digest;

use crate::EmulatorConfig;
use crate::error::DriveError;
use crate::faults::{Counters, FaultState, Faults, FaultsError, Plan};
use crate::store::{Blob, BlobWriter, Store};
use crate::util;

pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
pub const GOOGLE_APPS_PREFIX: &str = "application/vnd.google-apps.";
pub const DEFAULT_USER_EMAIL: &str = "demo@ferry.test";
pub const DEFAULT_USER_NAME: &str = "Demo User";

/// Shared handle on the emulator's state (cheap to clone).
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub store: Store,
    data: Mutex<Data>,
    requests: Mutex<HashMap<String, u64>>,
    faults: Mutex<FaultState>,
    auto_approve: std::sync::atomic::AtomicBool,
}

/// What tests see of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedFileInfo {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// Hex MD5 of the content (binary files only).
    pub md5: Option<String>,
    /// Content size in bytes (binary files only).
    pub size: Option<u64>,
    pub trashed: bool,
    pub parents: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub root_id: String,
    pub permission_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksums {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

impl Checksums {
    pub fn compute(content: &[u8]) -> Self {
        Self {
            md5: hex::encode(md5::Md5::digest(content)),
            sha1: hex::encode(<sha1::Sha1 as sha1::Digest>::digest(content)),
            sha256: hex::encode(sha2::Sha256::digest(content)),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub owner_id: String,
    pub trashed: bool,
    pub explicitly_trashed: bool,
    pub starred: bool,
    pub description: Option<String>,
    /// Bytes for binary files; Workspace files may carry seeded bytes used by export.
    pub content: Option<Blob>,
    pub checksums: Option<Checksums>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub version: u64,
    pub is_root: bool,
    /// The shared drive holding the file (None: My Drive).
    #[serde(default)]
    pub drive_id: Option<String>,
    /// Flagged as malware/spam: downloads need `acknowledgeAbuse=true`.
    #[serde(default)]
    pub abusive: bool,
}

impl FileEntry {
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }

    /// Binary (downloadable) content, as opposed to folders and Google Workspace types.
    pub fn is_binary(&self) -> bool {
        !self.mime_type.starts_with(GOOGLE_APPS_PREFIX)
    }

    pub fn size(&self) -> Option<u64> {
        if self.is_binary() { Some(self.content.as_ref().map_or(0, |c| c.len)) } else { None }
    }

    pub fn info(&self) -> EmulatedFileInfo {
        EmulatedFileInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            mime_type: self.mime_type.clone(),
            md5: self.checksums.as_ref().filter(|_| self.is_binary()).map(|c| c.md5.clone()),
            size: self.size(),
            trashed: self.trashed,
            parents: self.parents.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    Plain,
    S256,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: Option<(PkceMethod, String)>,
    pub user_id: String,
    pub scope: String,
    pub offline: bool,
    pub expires_at: Instant,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub grant: u64,
    pub expires_at: Instant,
}

/// Metadata of a file about to be created (validated shape, parents not yet resolved).
#[derive(Debug, Clone, Default)]
pub struct NewFile {
    pub id: Option<String>,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    pub parents: Vec<String>,
    pub description: Option<String>,
    pub starred: bool,
    pub created: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
    /// The request said `supportsAllDrives=true` (needed to create in a shared drive).
    pub all_drives: bool,
}

#[derive(Debug)]
pub struct UploadSession {
    pub user_id: String,
    pub meta: NewFile,
    pub total: Option<u64>,
    /// The bytes received so far, on disk; its own lock so chunks are written outside the data lock.
    pub writer: Arc<Mutex<BlobWriter>>,
    pub fields: Option<String>,
    /// Set once the file exists; status queries then answer 200 with it.
    pub completed: Option<String>,
    /// The bytes are being hashed and stored; a concurrent request must not see an empty buffer.
    pub finalizing: bool,
    /// `X-Upload-Content-Type`: what a Workspace target converts from.
    pub source_mime: Option<String>,
    /// files.update: the file whose content this replaces (None: files.create).
    pub update_of: Option<String>,
    /// Sessions expire (404) a while after they start.
    pub started: Instant,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub seq: u64,
    pub user_id: String,
    pub file_id: String,
    pub time: DateTime<Utc>,
    #[serde(default)]
    pub drive_id: Option<String>,
}

/// A shared drive: files in it belong to the drive; members see them (with `supportsAllDrives`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SharedDrive {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub hidden: bool,
    /// User ids.
    pub members: Vec<String>,
}

#[derive(Default)]
pub struct Data {
    pub users: HashMap<String, User>,
    users_by_email: HashMap<String, String>,
    pub files: HashMap<String, FileEntry>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<u64, Grant>,
    next_grant: u64,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, u64>,
    pub uploads: HashMap<String, UploadSession>,
    pub pending_auth: HashMap<String, crate::oauth::PendingAuth>,
    pub changes: Vec<Change>,
    pub change_seq: u64,
    /// Bumped by every change worth persisting (files, users, grants).
    pub generation: u64,
    pub drives: HashMap<String, SharedDrive>,
    /// drives.create `requestId`s already used.
    pub drive_requests: HashMap<String, String>,
}

/// What `--data-dir` keeps across restarts (codes, access tokens and upload sessions are not kept:
/// clients refresh and restart uploads, as after a real outage).
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    users: Vec<User>,
    files: Vec<FileEntry>,
    grants: Vec<(u64, Grant)>,
    next_grant: u64,
    refresh_tokens: Vec<(String, u64)>,
    changes: Vec<Change>,
    change_seq: u64,
    #[serde(default)]
    drives: Vec<SharedDrive>,
}

const SNAPSHOT_FILE: &str = "state.json";

fn display_name_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Data {
    pub fn ensure_user(&mut self, email: &str, display_name: Option<&str>) -> String {
        let key = email.to_ascii_lowercase();
        if let Some(id) = self.users_by_email.get(&key) {
            return id.clone();
        }
        let id = util::random_digits(21);
        let root_id = format!("0A{}", util::random_token(17));
        let now = Utc::now();
        self.files.insert(
            root_id.clone(),
            FileEntry {
                id: root_id.clone(),
                name: "My Drive".to_owned(),
                mime_type: FOLDER_MIME.to_owned(),
                parents: Vec::new(),
                owner_id: id.clone(),
                trashed: false,
                explicitly_trashed: false,
                starred: false,
                description: None,
                content: None,
                checksums: None,
                created: now,
                modified: now,
                version: 1,
                is_root: true,
                drive_id: None,
                abusive: false,
            },
        );
        let name = match display_name {
            Some(n) if !n.trim().is_empty() => n.to_owned(),
            _ => display_name_from_email(email),
        };
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                email: email.to_owned(),
                display_name: name,
                root_id,
                permission_id: util::random_digits(20),
            },
        );
        self.users_by_email.insert(key, id.clone());
        self.generation += 1;
        id
    }

    pub fn user(&self, user_id: &str) -> Result<&User, DriveError> {
        self.users.get(user_id).ok_or_else(DriveError::auth)
    }

    /// Resolves the `root` alias to the user's root folder id.
    pub fn resolve(&self, user_id: &str, id: &str) -> String {
        if id == "root"
            && let Some(u) = self.users.get(user_id)
        {
            return u.root_id.clone();
        }
        id.to_owned()
    }

    /// Whether the user may see a file: their own in My Drive, or anything in a shared drive they belong to.
    pub fn can_see(&self, user_id: &str, f: &FileEntry) -> bool {
        match &f.drive_id {
            None => f.owner_id == user_id,
            Some(d) => self.is_member(user_id, d),
        }
    }

    pub fn is_member(&self, user_id: &str, drive_id: &str) -> bool {
        self.drives.get(drive_id).is_some_and(|d| d.members.iter().any(|m| m == user_id))
    }

    /// A file the user may see; anything else is Drive's 404. (Shared-drive items also need
    /// `supportsAllDrives=true`; handlers check that.)
    pub fn owned(&self, user_id: &str, id: &str) -> Result<&FileEntry, DriveError> {
        let resolved = self.resolve(user_id, id);
        match self.files.get(&resolved) {
            Some(f) if self.can_see(user_id, f) => Ok(f),
            _ => Err(DriveError::not_found(id)),
        }
    }

    pub fn owned_mut(&mut self, user_id: &str, id: &str) -> Result<&mut FileEntry, DriveError> {
        let resolved = self.resolve(user_id, id);
        self.owned(user_id, id)?;
        self.files.get_mut(&resolved).ok_or_else(|| DriveError::not_found(id))
    }

    pub fn record_change(&mut self, user_id: &str, file_id: &str) {
        self.generation += 1;
        self.change_seq += 1;
        let drive_id = self.files.get(file_id).and_then(|f| f.drive_id.clone());
        self.changes.push(Change {
            seq: self.change_seq,
            user_id: user_id.to_owned(),
            file_id: file_id.to_owned(),
            time: Utc::now(),
            drive_id,
        });
    }

    /// A new shared drive with its root folder (the drive id is also the folder id, as on Drive).
    pub fn create_shared_drive(&mut self, name: &str, members: Vec<String>) -> String {
        let id = format!("0A{}", util::random_token(17));
        let now = Utc::now();
        let creator = members.first().cloned().unwrap_or_default();
        self.files.insert(
            id.clone(),
            FileEntry {
                id: id.clone(),
                name: name.to_owned(),
                mime_type: FOLDER_MIME.to_owned(),
                parents: Vec::new(),
                owner_id: creator,
                trashed: false,
                explicitly_trashed: false,
                starred: false,
                description: None,
                content: None,
                checksums: None,
                created: now,
                modified: now,
                version: 1,
                is_root: true,
                drive_id: Some(id.clone()),
                abusive: false,
            },
        );
        self.drives.insert(
            id.clone(),
            SharedDrive { id: id.clone(), name: name.to_owned(), created: now, hidden: false, members },
        );
        self.generation += 1;
        id
    }

    /// Checks what `insert_file` would check, without inserting: parents and a chosen id.
    pub fn check_new_file(&self, user_id: &str, meta: &NewFile) -> Result<Vec<String>, DriveError> {
        if let Some(id) = &meta.id
            && self.files.contains_key(id)
        {
            return Err(DriveError::duplicate_id());
        }
        let mut parents = Vec::new();
        if meta.parents.is_empty() {
            parents.push(self.user(user_id)?.root_id.clone());
        }
        for p in &meta.parents {
            let parent = self.owned(user_id, p)?;
            if parent.drive_id.is_some() && !meta.all_drives {
                return Err(DriveError::not_found(p));
            }
            if !parent.is_folder() {
                return Err(DriveError::bad_request(format!("The parent {p} is not a folder.")).at("parents", "other"));
            }
            parents.push(parent.id.clone());
        }
        Ok(parents)
    }

    /// Inserts a file whose content (if any) is already stored, with the content's checksums.
    pub fn insert_file(
        &mut self,
        user_id: &str,
        meta: &NewFile,
        content: Option<Blob>,
        checksums: Option<Checksums>,
    ) -> Result<String, DriveError> {
        let parents = self.check_new_file(user_id, meta)?;
        let drive_id = parents.first().and_then(|p| self.files.get(p)).and_then(|p| p.drive_id.clone());
        let id = match &meta.id {
            Some(id) => id.clone(),
            None => loop {
                let id = util::drive_id();
                if !self.files.contains_key(&id) {
                    break id;
                }
            },
        };
        let now = Utc::now();
        let mime_type = meta.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
        let binary = !mime_type.starts_with(GOOGLE_APPS_PREFIX);
        let checksums = match (binary, checksums) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => Some(Checksums::compute(b"")),
        };
        let entry = FileEntry {
            id: id.clone(),
            name: meta.name.clone().unwrap_or_else(|| "Untitled".to_owned()),
            mime_type,
            parents,
            owner_id: user_id.to_owned(),
            trashed: false,
            explicitly_trashed: false,
            starred: meta.starred,
            description: meta.description.clone(),
            content,
            checksums,
            created: meta.created.unwrap_or(now),
            modified: meta.modified.unwrap_or(now),
            version: 1,
            is_root: false,
            drive_id,
            abusive: false,
        };
        self.files.insert(id.clone(), entry);
        self.record_change(user_id, &id);
        Ok(id)
    }

    /// Replaces a file's content (files.update with media) and applies the metadata sent with it;
    /// returns the old content for the caller to delete.
    pub fn replace_content(
        &mut self,
        user_id: &str,
        id: &str,
        meta: &NewFile,
        content: Option<Blob>,
        checksums: Option<Checksums>,
    ) -> Result<Option<Blob>, DriveError> {
        let now = Utc::now();
        let f = self.owned_mut(user_id, id)?;
        if let Some(n) = &meta.name {
            f.name = n.clone();
        }
        if let Some(m) = &meta.mime_type {
            f.mime_type = m.clone();
        }
        if let Some(d) = &meta.description {
            f.description = Some(d.clone());
        }
        let binary = f.is_binary();
        let old = std::mem::replace(&mut f.content, content);
        f.checksums = if binary { Some(checksums.unwrap_or_else(|| Checksums::compute(b""))) } else { None };
        f.version += 1;
        f.modified = meta.modified.unwrap_or(now);
        let file_id = f.id.clone();
        self.record_change(user_id, &file_id);
        Ok(old)
    }

    /// The file and everything below it (folders first-come order).
    pub fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_owned()];
        let mut seen: HashSet<String> = out.iter().cloned().collect();
        let mut i = 0;
        while i < out.len() {
            let current = out[i].clone();
            for f in self.files.values() {
                if f.parents.contains(&current) && seen.insert(f.id.clone()) {
                    out.push(f.id.clone());
                }
            }
            i += 1;
        }
        out
    }

    pub fn usage(&self, user_id: &str) -> (u64, u64) {
        let mut total = 0;
        let mut trash = 0;
        for f in self.files.values().filter(|f| f.owner_id == user_id && f.drive_id.is_none()) {
            let size = f.size().unwrap_or(0);
            total += size;
            if f.trashed {
                trash += size;
            }
        }
        (total, trash)
    }

    /// A new grant with a fresh access token (and a refresh token when `offline`).
    pub fn issue_grant(
        &mut self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        offline: bool,
        ttl: std::time::Duration,
    ) -> (String, Option<String>) {
        self.next_grant += 1;
        self.generation += 1;
        let grant = self.next_grant;
        self.grants.insert(
            grant,
            Grant { user_id: user_id.to_owned(), client_id: client_id.to_owned(), scope: scope.to_owned() },
        );
        let refresh = offline.then(|| {
            let t = format!("1//0{}", util::random_token(100));
            self.refresh_tokens.insert(t.clone(), grant);
            t
        });
        (self.issue_access_token(grant, ttl), refresh)
    }

    pub fn issue_access_token(&mut self, grant: u64, ttl: std::time::Duration) -> String {
        let token = format!("ya29.a0{}", util::random_token(160));
        self.access_tokens.insert(token.clone(), AccessToken { grant, expires_at: Instant::now() + ttl });
        token
    }

    /// The user behind a live access token.
    pub fn user_for_token(&self, token: &str) -> Option<String> {
        let t = self.access_tokens.get(token)?;
        if Instant::now() >= t.expires_at {
            return None;
        }
        self.grants.get(&t.grant).map(|g| g.user_id.clone())
    }

    /// Revokes the grant behind an access or refresh token; false if the token is unknown.
    pub fn revoke(&mut self, token: &str) -> bool {
        let grant = self.access_tokens.get(token).map(|t| t.grant).or_else(|| self.refresh_tokens.get(token).copied());
        let Some(grant) = grant else {
            return false;
        };
        self.grants.remove(&grant);
        self.generation += 1;
        self.access_tokens.retain(|_, t| t.grant != grant);
        self.refresh_tokens.retain(|_, g| *g != grant);
        true
    }
}

impl Data {
    fn restore(&mut self, snap: Snapshot) {
        for u in snap.users {
            self.users_by_email.insert(u.email.to_ascii_lowercase(), u.id.clone());
            self.users.insert(u.id.clone(), u);
        }
        self.files = snap.files.into_iter().map(|f| (f.id.clone(), f)).collect();
        self.grants = snap.grants.into_iter().collect();
        self.next_grant = snap.next_grant;
        self.refresh_tokens = snap.refresh_tokens.into_iter().collect();
        self.changes = snap.changes;
        self.change_seq = snap.change_seq;
        self.drives = snap.drives.into_iter().map(|d| (d.id.clone(), d)).collect();
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            users: self.users.values().cloned().collect(),
            files: self.files.values().cloned().collect(),
            grants: self.grants.iter().map(|(k, v)| (*k, v.clone())).collect(),
            next_grant: self.next_grant,
            refresh_tokens: self.refresh_tokens.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            changes: self.changes.clone(),
            change_seq: self.change_seq,
            drives: self.drives.values().cloned().collect(),
        }
    }
}

impl EmulatorState {
    pub(crate) fn new(config: EmulatorConfig) -> std::io::Result<Self> {
        let faults = FaultState::new(config.faults.clone());
        let auto_approve = config.auto_approve;
        let store = match &config.data_dir {
            Some(dir) => Store::at(dir)?,
            None => Store::temporary()?,
        };
        let mut data = Data::default();
        let snapshot = store.root().join(SNAPSHOT_FILE);
        if store.is_persistent() && snapshot.exists() {
            let raw = std::fs::read(&snapshot)?;
            let snap: Snapshot = serde_json::from_slice(&raw)
                .map_err(|e| std::io::Error::other(format!("reading {}: {e}", snapshot.display())))?;
            data.restore(snap);
            tracing::info!(users = data.users.len(), files = data.files.len(), "state restored from the data dir");
        }
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                store,
                data: Mutex::new(data),
                requests: Mutex::new(HashMap::new()),
                faults: Mutex::new(faults),
                auto_approve: std::sync::atomic::AtomicBool::new(auto_approve),
            }),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Writes the state to the data dir (when there is one) if it changed since `since`; returns the
    /// generation written (or current).
    pub(crate) fn save_if_changed(&self, since: u64) -> std::io::Result<u64> {
        if !self.store().is_persistent() {
            return Ok(since);
        }
        let (generation, json) = {
            let data = self.data();
            if data.generation == since {
                return Ok(since);
            }
            (data.generation, serde_json::to_vec(&data.snapshot()).map_err(std::io::Error::other)?)
        };
        let path = self.store().root().join(SNAPSHOT_FILE);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)?;
        Ok(generation)
    }

    /// Seeds a shared drive whose members are these users (created if needed); returns its id, which is
    /// also the id of its root folder (use it as `parent_id` to seed files in it).
    pub fn create_shared_drive(&self, name: &str, member_emails: &[&str]) -> String {
        let mut data = self.data();
        let members = member_emails.iter().map(|e| data.ensure_user(e, None)).collect();
        data.create_shared_drive(name, members)
    }

    /// True when no user has any file (a fresh start, not a restored `--data-dir`).
    pub fn is_empty(&self) -> bool {
        self.data().files.values().all(|f| f.is_root)
    }

    /// Where contents (and with `--data-dir`, the state) are kept.
    pub fn data_dir(&self) -> &std::path::Path {
        self.store().root()
    }

    /// Whether authorization requests are approved at once (else the consent page is shown).
    pub fn auto_approve(&self) -> bool {
        self.shared.auto_approve.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Switches between approving at once and showing the consent page, at run time.
    pub fn set_auto_approve(&self, on: bool) {
        self.shared.auto_approve.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn fault_state(&self) -> MutexGuard<'_, FaultState> {
        self.shared.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fault injection in force.
    pub fn faults(&self) -> Faults {
        self.fault_state().faults.clone()
    }

    /// Replaces the fault injection (validated first; on error nothing changes).
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultsError> {
        faults.validate()?;
        self.fault_state().faults = faults;
        Ok(())
    }

    /// Changes the fault injection in place (validated after `change`; on error nothing changes).
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Result<Faults, FaultsError> {
        let mut state = self.fault_state();
        let mut faults = state.faults.clone();
        change(&mut faults);
        faults.validate()?;
        state.faults = faults.clone();
        Ok(faults)
    }

    /// Requests per endpoint and per user, injected errors, bytes moved, since the last reset.
    pub fn counters(&self) -> Counters {
        self.fault_state().counters.clone()
    }

    /// Zeroes the counters, the per-second windows and the daily upload/download usage.
    pub fn reset_counters(&self) {
        self.fault_state().reset_counters();
    }

    /// Revokes every grant of the user (access and refresh tokens alike); returns how many grants there were.
    pub fn revoke_user_tokens(&self, email: &str) -> usize {
        let mut data = self.data();
        let key = email.to_ascii_lowercase();
        let Some(user_id) = data.users_by_email.get(&key).cloned() else {
            return 0;
        };
        let grants: Vec<u64> = data.grants.iter().filter(|(_, g)| g.user_id == user_id).map(|(id, _)| *id).collect();
        data.grants.retain(|_, g| g.user_id != user_id);
        data.generation += 1;
        data.access_tokens.retain(|_, t| !grants.contains(&t.grant));
        data.refresh_tokens.retain(|_, g| !grants.contains(g));
        grants.len()
    }

    /// The email of a user id, for accounting.
    pub(crate) fn email_of(&self, user_id: &str) -> Option<String> {
        self.data().users.get(user_id).map(|u| u.email.to_ascii_lowercase())
    }

    /// The user a request acts for: its access token's, or its upload session's (session URLs carry no token).
    pub(crate) fn caller_email(&self, req: &actix_web::HttpRequest) -> Option<String> {
        let data = self.data();
        let user_id = match crate::oauth::bearer(req) {
            Some(token) => data.user_for_token(&token)?,
            None => {
                let upload_id = util::Params::from_request(req).non_empty("upload_id")?.to_owned();
                data.uploads.get(&upload_id)?.user_id.clone()
            }
        };
        data.users.get(&user_id).map(|u| u.email.to_ascii_lowercase())
    }

    pub(crate) fn plan(&self, endpoint: &str, user: Option<&str>, drive: bool) -> Plan {
        self.fault_state().plan(endpoint, user, drive)
    }

    pub(crate) fn charge_upload(&self, user_id: &str, bytes: u64) -> Result<(), DriveError> {
        match self.email_of(user_id) {
            Some(email) => self.fault_state().charge_upload(&email, bytes),
            None => Ok(()),
        }
    }

    pub(crate) fn charge_download(&self, user_id: &str, bytes: u64) -> Result<(), DriveError> {
        match self.email_of(user_id) {
            Some(email) => self.fault_state().charge_download(&email, bytes),
            None => Ok(()),
        }
    }

    /// Whether to stall this transfer, if the faults say so.
    pub(crate) fn take_stall(&self, user_id: &str, kind: crate::faults::StallKind) -> Option<crate::faults::Stall> {
        let email = self.email_of(user_id);
        self.fault_state().take_stall(kind, email.as_deref())
    }

    /// Whether to corrupt this download, if the faults say so.
    pub(crate) fn take_download_corruption(&self, user_id: &str) -> bool {
        let email = self.email_of(user_id);
        self.fault_state().take_corruption(email.as_deref())
    }

    /// Where to cut this download, if the faults say so.
    pub(crate) fn take_download_cut(&self, user_id: &str) -> Option<u64> {
        let email = self.email_of(user_id);
        self.fault_state().take_cut(email.as_deref())
    }

    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// The data lock; a panic in another handler must not wedge the emulator, so poison is ignored.
    pub(crate) fn data(&self) -> MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn count_request(&self, path: &str) {
        let mut counts = self.shared.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(path.to_owned()).or_insert(0) += 1;
    }

    /// Requests served so far, per path.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        self.shared.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Counts requests whose path starts with `path_prefix`.
    pub fn request_count(&self, path_prefix: &str) -> u64 {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|(path, _)| path.starts_with(path_prefix))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Returns the user id (Google's `sub`) for `email`, creating the user and their My Drive on first use.
    pub fn ensure_user(&self, email: &str, display_name: &str) -> String {
        self.data().ensure_user(email, Some(display_name))
    }

    /// The id of the user's My Drive root folder (the user is created if needed).
    pub fn root_folder_id(&self, email: &str) -> String {
        let mut data = self.data();
        let user_id = data.ensure_user(email, None);
        data.users.get(&user_id).map(|u| u.root_id.clone()).unwrap_or_default()
    }

    /// Seeds a folder. `parent_id` None (or `"root"`) means the owner's My Drive; an unknown
    /// parent id is kept as given, so the folder is only reachable by that id.
    pub fn create_folder(&self, owner_email: &str, parent_id: Option<&str>, name: &str) -> String {
        self.seed(owner_email, parent_id, name, FOLDER_MIME, None)
    }

    /// Seeds a file with content (checksums computed now). Workspace MIME types keep the bytes
    /// for export but are not downloadable, like on Drive.
    pub fn create_file(
        &self,
        owner_email: &str,
        parent_id: Option<&str>,
        name: &str,
        mime_type: &str,
        content: Bytes,
    ) -> String {
        self.seed(owner_email, parent_id, name, mime_type, Some(content))
    }

    fn seed(
        &self,
        owner_email: &str,
        parent_id: Option<&str>,
        name: &str,
        mime_type: &str,
        content: Option<Bytes>,
    ) -> String {
        let stored = match content.as_deref().map(|c| self.store().put(c)).transpose() {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, %name, "cannot store seeded content");
                return String::new();
            }
        };
        self.seed_stored(owner_email, parent_id, name, mime_type, stored)
    }

    /// Seeds a file whose content is already stored.
    pub(crate) fn seed_stored(
        &self,
        owner_email: &str,
        parent_id: Option<&str>,
        name: &str,
        mime_type: &str,
        stored: Option<(Blob, Checksums)>,
    ) -> String {
        let (blob, checksums) = match stored {
            Some((b, c)) => (Some(b), Some(c)),
            None => (None, None),
        };
        let mut data = self.data();
        let user_id = data.ensure_user(owner_email, None);
        let meta = NewFile { name: Some(name.to_owned()), mime_type: Some(mime_type.to_owned()), ..NewFile::default() };
        // Parents are set directly so seeding never fails.
        let parent = match parent_id {
            None | Some("root") => data.resolve(&user_id, "root"),
            Some(p) => p.to_owned(),
        };
        let drive_id = data.files.get(&parent).and_then(|p| p.drive_id.clone());
        let inserted = data.insert_file(&user_id, &meta, blob, checksums);
        match inserted {
            Ok(id) => {
                if let Some(f) = data.files.get_mut(&id) {
                    f.parents = vec![parent];
                    f.drive_id = drive_id.clone();
                }
                // The creation was recorded before the parent was known: it belongs to the parent's corpus.
                if let Some(change) = data.changes.iter_mut().rev().find(|c| c.file_id == id) {
                    change.drive_id = drive_id;
                }
                id
            }
            Err(_) => String::new(),
        }
    }

    /// The stored content of a file (binary content, or a Workspace file's text model).
    pub fn file_content(&self, file_id: &str) -> Option<Bytes> {
        let blob = self.data().files.get(file_id)?.content.clone();
        match blob {
            Some(b) => self.store().read(&b).ok().map(Bytes::from),
            None => Some(Bytes::new()),
        }
    }

    pub fn file_info(&self, file_id: &str) -> Option<EmulatedFileInfo> {
        self.data().files.get(file_id).map(FileEntry::info)
    }

    /// Direct children of a folder (trashed ones included), sorted by name.
    pub fn children(&self, folder_id: &str) -> Vec<EmulatedFileInfo> {
        let data = self.data();
        let mut out: Vec<EmulatedFileInfo> =
            data.files.values().filter(|f| f.parents.iter().any(|p| p == folder_id)).map(FileEntry::info).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Flags a file as malware/spam (or clears it): downloads then need `acknowledgeAbuse=true`.
    pub fn set_abusive(&self, file_id: &str, abusive: bool) -> bool {
        let mut data = self.data();
        match data.files.get_mut(file_id) {
            Some(f) => {
                f.abusive = abusive;
                true
            }
            None => false,
        }
    }

    /// Moves a file to (or out of) the trash, as the Drive UI would.
    pub fn set_trashed(&self, file_id: &str, trashed: bool) -> bool {
        let mut data = self.data();
        let Some(f) = data.files.get_mut(file_id) else {
            return false;
        };
        f.trashed = trashed;
        f.explicitly_trashed = trashed;
        f.version += 1;
        f.modified = Utc::now();
        let owner = f.owner_id.clone();
        data.record_change(&owner, file_id);
        true
    }

    /// Renames a file or folder, as the Drive UI would (a change in the feed).
    pub fn rename(&self, file_id: &str, name: &str) -> bool {
        self.touch(file_id, |f| f.name = name.to_owned())
    }

    /// Moves a file or folder under `parent_id`, as the Drive UI would (a change for it, none for what it holds).
    pub fn move_to(&self, file_id: &str, parent_id: &str) -> bool {
        self.touch(file_id, |f| f.parents = vec![parent_id.to_owned()])
    }

    /// New content for a binary file: a new revision, with its checksums.
    pub fn replace_file_content(&self, file_id: &str, content: Bytes) -> bool {
        let Ok((blob, checksums)) = self.store().put(&content) else { return false };
        let mut data = self.data();
        let Some(f) = data.files.get_mut(file_id) else { return false };
        f.content = Some(blob);
        f.checksums = Some(checksums);
        f.version += 1;
        f.modified = Utc::now();
        let owner = f.owner_id.clone();
        data.record_change(&owner, file_id);
        true
    }

    /// Deletes a file (a folder with everything below it) for good: removals in the feed.
    pub fn delete_forever(&self, file_id: &str) -> bool {
        let mut data = self.data();
        let Some(owner) = data.files.get(file_id).map(|f| f.owner_id.clone()) else { return false };
        for gone in data.subtree(file_id) {
            data.record_change(&owner, &gone);
            data.files.remove(&gone);
        }
        true
    }

    fn touch(&self, file_id: &str, change: impl FnOnce(&mut FileEntry)) -> bool {
        let mut data = self.data();
        let Some(f) = data.files.get_mut(file_id) else { return false };
        change(f);
        f.version += 1;
        f.modified = Utc::now();
        let owner = f.owner_id.clone();
        data.record_change(&owner, file_id);
        true
    }

    /// Every access token, refresh token and resumable upload id the emulator currently knows, so tests can
    /// look for them where they must never appear (a database dump, logs).
    pub fn known_secrets(&self) -> Vec<String> {
        let data = self.data();
        data.access_tokens.keys().chain(data.refresh_tokens.keys()).chain(data.uploads.keys()).cloned().collect()
    }

    /// Every access token issued so far becomes expired (tokens issued later are fresh).
    pub fn expire_access_tokens(&self) {
        self.expire_all_access_tokens();
    }

    /// Like `expire_access_tokens`, returning how many tokens were live or not.
    pub(crate) fn expire_all_access_tokens(&self) -> usize {
        let mut data = self.data();
        let now = Instant::now();
        for t in data.access_tokens.values_mut() {
            t.expires_at = now;
        }
        data.access_tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_come_from_emails() {
        assert_eq!(display_name_from_email("jane.doe@x.test"), "Jane Doe");
    }

    #[test]
    fn seeding_builds_a_tree() {
        let state = EmulatorState::new(EmulatorConfig::default()).expect("state");
        let folder = state.create_folder("a@x.test", None, "docs");
        let file = state.create_file("a@x.test", Some(&folder), "a.txt", "text/plain", Bytes::from_static(b"hello"));
        let kids = state.children(&folder);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].id, file);
        assert_eq!(kids[0].size, Some(5));
        assert_eq!(kids[0].md5.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        let root = state.root_folder_id("a@x.test");
        assert_eq!(state.children(&root)[0].id, folder);
    }
}

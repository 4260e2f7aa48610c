//! The emulator's in-memory world: users, files, OAuth codes/grants/tokens, upload sessions.
//!
//! One mutex guards the data; handlers take it for short, synchronous sections only (never
//! across an await), and hash large contents before taking it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use md5::Digest;

use crate::EmulatorConfig;
use crate::error::DriveError;
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
    data: Mutex<Data>,
    requests: Mutex<HashMap<String, u64>>,
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

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub root_id: String,
    pub permission_id: String,
}

#[derive(Debug, Clone)]
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

#[derive(Debug, Clone)]
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
    pub content: Option<Bytes>,
    pub checksums: Option<Checksums>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub version: u64,
    pub is_root: bool,
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
        if self.is_binary() { Some(self.content.as_ref().map_or(0, |c| c.len() as u64)) } else { None }
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

#[derive(Debug, Clone)]
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
}

#[derive(Debug)]
pub struct UploadSession {
    pub user_id: String,
    pub meta: NewFile,
    pub total: Option<u64>,
    pub buf: BytesMut,
    pub fields: Option<String>,
    /// Set once the file exists; status queries then answer 200 with it.
    pub completed: Option<String>,
    /// The bytes are being hashed and stored; a concurrent request must not see an empty buffer.
    pub finalizing: bool,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub seq: u64,
    pub user_id: String,
    pub file_id: String,
    pub time: DateTime<Utc>,
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
    pub changes: Vec<Change>,
    pub change_seq: u64,
}

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

    /// A file the user may see (their own); anything else is Drive's 404.
    pub fn owned(&self, user_id: &str, id: &str) -> Result<&FileEntry, DriveError> {
        let resolved = self.resolve(user_id, id);
        match self.files.get(&resolved) {
            Some(f) if f.owner_id == user_id => Ok(f),
            _ => Err(DriveError::not_found(id)),
        }
    }

    pub fn owned_mut(&mut self, user_id: &str, id: &str) -> Result<&mut FileEntry, DriveError> {
        let resolved = self.resolve(user_id, id);
        match self.files.get_mut(&resolved) {
            Some(f) if f.owner_id == user_id => Ok(f),
            _ => Err(DriveError::not_found(id)),
        }
    }

    pub fn record_change(&mut self, user_id: &str, file_id: &str) {
        self.change_seq += 1;
        self.changes.push(Change {
            seq: self.change_seq,
            user_id: user_id.to_owned(),
            file_id: file_id.to_owned(),
            time: Utc::now(),
        });
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
            if !parent.is_folder() {
                return Err(DriveError::bad_request(format!("The parent {p} is not a folder.")).at("parents", "other"));
            }
            parents.push(parent.id.clone());
        }
        Ok(parents)
    }

    pub fn insert_file(
        &mut self,
        user_id: &str,
        meta: &NewFile,
        content: Option<Bytes>,
        checksums: Option<Checksums>,
    ) -> Result<String, DriveError> {
        let parents = self.check_new_file(user_id, meta)?;
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
        let content = match content {
            Some(c) => Some(c),
            None if binary => Some(Bytes::new()),
            None => None,
        };
        let checksums = match (binary, checksums) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => Some(Checksums::compute(content.as_deref().unwrap_or_default())),
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
        };
        self.files.insert(id.clone(), entry);
        self.record_change(user_id, &id);
        Ok(id)
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
        for f in self.files.values().filter(|f| f.owner_id == user_id) {
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
        self.access_tokens.retain(|_, t| t.grant != grant);
        self.refresh_tokens.retain(|_, g| *g != grant);
        true
    }
}

impl EmulatorState {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                data: Mutex::new(Data::default()),
                requests: Mutex::new(HashMap::new()),
            }),
        }
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
        let binary = !mime_type.starts_with(GOOGLE_APPS_PREFIX);
        let checksums = match (&content, binary) {
            (Some(c), true) => Some(Checksums::compute(c)),
            _ => None,
        };
        let mut data = self.data();
        let user_id = data.ensure_user(owner_email, None);
        let meta = NewFile { name: Some(name.to_owned()), mime_type: Some(mime_type.to_owned()), ..NewFile::default() };
        // Parents are set directly so seeding never fails.
        let parent = match parent_id {
            None | Some("root") => data.resolve(&user_id, "root"),
            Some(p) => p.to_owned(),
        };
        let inserted = data.insert_file(&user_id, &meta, content, checksums);
        match inserted {
            Ok(id) => {
                if let Some(f) = data.files.get_mut(&id) {
                    f.parents = vec![parent];
                }
                id
            }
            Err(_) => String::new(),
        }
    }

    pub fn file_content(&self, file_id: &str) -> Option<Bytes> {
        self.data().files.get(file_id).and_then(|f| f.content.clone())
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
        let state = EmulatorState::new(EmulatorConfig::default());
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

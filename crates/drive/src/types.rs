//! Drive v3 resource types as Ferry uses them, and their wire (JSON) forms.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Deserializer};

use crate::DriveError;
use crate::drive::{FOLDER_MIME_TYPE, GOOGLE_APPS_MIME_PREFIX};

/// A Drive file or folder, reduced to the fields Ferry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// Bytes of binary content; `None` for folders, shortcuts and Google Workspace files.
    pub size: Option<u64>,
    pub md5_checksum: Option<String>,
    /// Lowercase hex SHA-256 of binary content, when Drive reports it (binary files only).
    pub sha256_checksum: Option<String>,
    pub modified_time: Option<DateTime<Utc>>,
    pub created_time: Option<DateTime<Utc>>,
    pub parents: Vec<String>,
    pub web_view_link: Option<String>,
    pub thumbnail_link: Option<String>,
    pub trashed: bool,
    /// The shared drive holding it; `None` in My Drive.
    pub drive_id: Option<String>,
    /// Changes with every content revision of a binary file (absent for folders and Workspace files).
    pub head_revision_id: Option<String>,
    /// Drive's monotonically increasing version of the file (any change, metadata included).
    pub version: Option<u64>,
}

impl DriveFile {
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME_TYPE
    }

    /// A Google-native type (Docs, Sheets, Slides, Drawings, shortcuts, ...) with no binary
    /// content to download: it needs `files.export` (or cannot be copied at all). Folders are
    /// not counted.
    pub fn is_google_workspace(&self) -> bool {
        self.mime_type.starts_with(GOOGLE_APPS_MIME_PREFIX) && !self.is_folder()
    }
}

/// One page of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileList {
    pub files: Vec<DriveFile>,
    /// Present when more pages follow.
    pub next_page_token: Option<String>,
}

/// One entry of the changes feed: the latest state of one file since the page token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub file_id: String,
    /// The file is gone for this user (deleted forever, or no longer shared with them).
    pub removed: bool,
    /// The file as it is now; `None` when removed.
    pub file: Option<DriveFile>,
    /// The shared drive the change belongs to, if any.
    pub drive_id: Option<String>,
}

/// One page of the changes feed. The last page carries `new_start_page_token`, where the next run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeList {
    pub changes: Vec<Change>,
    pub next_page_token: Option<String>,
    pub new_start_page_token: Option<String>,
}

/// The account behind a token, from `about.get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The account's stable id (Drive's `permissionId`): the same account whatever its email becomes.
    pub account_id: Option<String>,
    /// Storage limit in bytes; `None` for unlimited accounts.
    pub storage_limit: Option<u64>,
    /// Bytes used across Drive, Gmail and Photos.
    pub storage_usage: Option<u64>,
}

/// Metadata for a file created through a resumable upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDriveFile {
    /// A pre-generated id (`generate_ids`), so a retried create gets 409 instead of a duplicate.
    pub id: Option<String>,
    pub name: String,
    pub mime_type: String,
    /// Empty means My Drive root.
    pub parents: Vec<String>,
}

/// State of a resumable upload after a chunk or a status query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per chunk, moved rarely; boxing would only complicate matching"
)]
pub enum UploadProgress {
    /// The server holds `committed` bytes (from the `Range` header; 0 when absent). Continue
    /// from there, which may be earlier than the end of the last chunk sent.
    Incomplete { committed: u64 },
    /// All bytes arrived and the file exists.
    Complete(DriveFile),
}

/// A streamed download. Dropping the stream aborts the transfer.
pub struct Download {
    /// Size of the whole file (not of the remaining range), when the server said.
    pub total_size: Option<u64>,
    pub stream: BoxStream<'static, Result<Bytes, DriveError>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download").field("total_size", &self.total_size).finish_non_exhaustive()
    }
}

/// The File resource as Drive sends it (int64 as JSON strings, camelCase).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireFile {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mime_type: String,
    #[serde(default, deserialize_with = "int64_opt")]
    size: Option<u64>,
    #[serde(default)]
    md5_checksum: Option<String>,
    #[serde(default)]
    sha256_checksum: Option<String>,
    #[serde(default)]
    modified_time: Option<DateTime<Utc>>,
    #[serde(default)]
    created_time: Option<DateTime<Utc>>,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    web_view_link: Option<String>,
    #[serde(default)]
    thumbnail_link: Option<String>,
    #[serde(default)]
    trashed: bool,
    #[serde(default)]
    drive_id: Option<String>,
    #[serde(default)]
    head_revision_id: Option<String>,
    #[serde(default, deserialize_with = "int64_opt")]
    version: Option<u64>,
}

impl From<WireFile> for DriveFile {
    fn from(w: WireFile) -> Self {
        DriveFile {
            id: w.id,
            name: w.name,
            mime_type: w.mime_type,
            size: w.size,
            md5_checksum: w.md5_checksum,
            sha256_checksum: w.sha256_checksum,
            modified_time: w.modified_time,
            created_time: w.created_time,
            parents: w.parents,
            web_view_link: w.web_view_link,
            thumbnail_link: w.thumbnail_link,
            trashed: w.trashed,
            drive_id: w.drive_id,
            head_revision_id: w.head_revision_id,
            version: w.version,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireFileList {
    #[serde(default)]
    pub files: Vec<WireFile>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireChange {
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub removed: bool,
    #[serde(default)]
    pub file: Option<WireFile>,
    #[serde(default)]
    pub drive_id: Option<String>,
    /// `file` or `drive`; drive-level changes (a shared drive renamed) carry no file.
    #[serde(default)]
    pub change_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireChangeList {
    #[serde(default)]
    pub changes: Vec<WireChange>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub new_start_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireStartPageToken {
    pub start_page_token: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireGeneratedIds {
    #[serde(default)]
    pub ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireAbout {
    #[serde(default)]
    pub user: Option<WireUser>,
    #[serde(default)]
    pub storage_quota: Option<WireStorageQuota>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUser {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub permission_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireStorageQuota {
    #[serde(default, deserialize_with = "int64_opt")]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "int64_opt")]
    pub usage: Option<u64>,
}

/// Drive sends int64 fields as JSON strings; accept a number too, to be lenient.
fn int64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNum {
        Str(String),
        Num(u64),
    }
    match Option::<StrOrNum>::deserialize(d)? {
        None => Ok(None),
        Some(StrOrNum::Num(n)) => Ok(Some(n)),
        Some(StrOrNum::Str(s)) => {
            s.parse::<u64>().map(Some).map_err(|_| serde::de::Error::custom(format!("invalid int64 string {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_with_string_size() {
        let json = r#"{"kind":"drive#file","id":"abc","name":"a.txt","mimeType":"text/plain",
            "size":"12345","md5Checksum":"d41d8cd98f00b204e9800998ecf8427e",
            "modifiedTime":"2024-01-02T03:04:05.678Z","createdTime":"2024-01-02T03:04:05Z",
            "parents":["root1"],"trashed":false}"#;
        let f: DriveFile = serde_json::from_str::<WireFile>(json).expect("parse").into();
        assert_eq!(f.size, Some(12345));
        assert_eq!(f.parents, vec!["root1".to_owned()]);
        assert!(!f.is_folder());
        assert!(!f.is_google_workspace());
        assert_eq!(f.modified_time.map(|t| t.timestamp_millis()), Some(1_704_164_645_678));
    }

    #[test]
    fn folder_and_workspace_kinds() {
        let mk = |mime: &str| -> DriveFile {
            serde_json::from_value::<WireFile>(serde_json::json!({"id": "x", "mimeType": mime})).expect("parse").into()
        };
        let folder = mk(FOLDER_MIME_TYPE);
        assert!(folder.is_folder() && !folder.is_google_workspace());
        assert_eq!(folder.size, None);
        let doc = mk("application/vnd.google-apps.document");
        assert!(!doc.is_folder() && doc.is_google_workspace());
    }

    #[test]
    fn rejects_non_numeric_size() {
        let r = serde_json::from_str::<WireFile>(r#"{"id":"x","size":"12a"}"#);
        assert!(r.is_err());
    }
}

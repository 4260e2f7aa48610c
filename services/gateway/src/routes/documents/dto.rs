//! The documents API's bodies: what the handlers return, and what the OpenAPI document shows.

use ferry_core::FileId;
use ferry_db::files::StoredFile;
use ferry_db::store::Folder;
use ferry_db::versions::FileVersion;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::timestamp;

/// The id of the top of the tree (items not in any directory and not in the trash).
pub const ROOT_ID: &str = "root";
/// The id of the trash (what was trashed, each subtree by its top item).
pub const TRASH_ID: &str = "trash";

/// `GET /api/v2/me`: who the API key belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub tenant: TenantView,
}

/// A tenant: the documents API's `company_id` is its `id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
}

/// Who may reach an item without an API key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessInfo {
    pub public: PublicAccess,
}

/// The item's share link: `none`, or `read`/`write` for whoever has the token (and the password, when set).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicAccess {
    #[schema(pattern = "^(none|read|write)$")]
    pub level: String,
    /// Send as `?public_token=`; empty while there is no link.
    pub token: String,
    /// Milliseconds since the epoch after which the link stops working; 0 for never.
    pub expiration: i64,
    /// True when the link also needs `?public_password=`.
    pub password_protected: bool,
}

/// Share settings as stored with the item (the password only as a keyed digest).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredAccess {
    pub public: StoredPublicAccess,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPublicAccess {
    pub level: String,
    pub token: String,
    #[serde(default)]
    pub expiration: i64,
    #[serde(default)]
    pub password_digest: Option<String>,
}

impl Default for StoredPublicAccess {
    fn default() -> Self {
        StoredPublicAccess { level: "none".to_owned(), token: String::new(), expiration: 0, password_digest: None }
    }
}

impl StoredAccess {
    pub fn of(stored: Option<&serde_json::Value>) -> Self {
        stored.and_then(|value| serde_json::from_value(value.clone()).ok()).unwrap_or_default()
    }
}

impl AccessInfo {
    fn of(stored: Option<&serde_json::Value>) -> Self {
        let stored = StoredAccess::of(stored);
        AccessInfo {
            public: PublicAccess {
                level: stored.public.level,
                token: stored.public.token,
                expiration: stored.public.expiration,
                password_protected: stored.public.password_digest.is_some(),
            },
        }
    }
}

/// A change to an item's share link: `read` or `write` makes (or keeps) a link and the server generates its
/// token; `none` revokes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessInfoUpdate {
    pub public: PublicAccessUpdate,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessUpdate {
    #[schema(pattern = "^(none|read|write)$")]
    pub level: String,
    /// A password the link also needs (1 to 200 characters); absent or null for none.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*$")]
    pub password: Option<String>,
    /// Milliseconds since the epoch after which the link stops working (absent or 0: never).
    #[schema(minimum = 0)]
    pub expiration: Option<i64>,
    /// Ignored: the server makes the token.
    pub token: Option<String>,
}

/// A thumbnail of an image version, with where to fetch it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Thumbnail {
    pub index: u32,
    pub id: String,
    /// The thumbnail's media type (`image/jpeg`, or `image/png` for images with transparency).
    #[serde(rename = "type")]
    pub kind: String,
    pub size: i64,
    pub width: u32,
    pub height: u32,
    /// Path of the thumbnail on this server (authorise it like a download).
    pub url: String,
    pub full_url: Option<String>,
}

/// What a version's bytes are.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileMetadata {
    /// `internal` (uploaded to Ferry) or `drive` (imported).
    #[schema(pattern = "^(internal|drive)$")]
    pub source: String,
    /// The Drive file id of an imported version.
    pub external_id: Option<String>,
    pub name: String,
    pub mime: Option<String>,
    pub size: i64,
    pub thumbnails: Vec<Thumbnail>,
}

/// One version of a file item.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriveItemVersion {
    #[schema(format = Uuid)]
    pub id: String,
    /// `internal` for uploads, `drive` for imports.
    #[schema(pattern = "^(internal|drive)$")]
    pub provider: String,
    /// The stored content's id.
    pub file_id: String,
    pub file_metadata: FileMetadata,
    /// Milliseconds since the epoch.
    pub date_added: i64,
    pub creator_id: String,
    pub application_id: String,
}

impl From<&FileVersion> for DriveItemVersion {
    fn from(version: &FileVersion) -> Self {
        // The blob key's last segment names the stored bytes without showing the store's layout.
        let content_id = version.blob_key.rsplit('/').next().unwrap_or_default().to_owned();
        DriveItemVersion {
            id: version.id.to_string(),
            provider: version.provider.as_str().to_owned(),
            file_id: content_id,
            file_metadata: FileMetadata {
                source: version.source.clone(),
                external_id: version.external_id.clone(),
                name: version.name.clone(),
                mime: version.mime_type.clone(),
                size: version.size_bytes,
                thumbnails: thumbnails_of(version),
            },
            date_added: version.created_at.timestamp_millis(),
            creator_id: version.creator_id.clone().unwrap_or_default(),
            application_id: version.application_id.clone().unwrap_or_default(),
        }
    }
}

/// A version's thumbnails with their URLs.
fn thumbnails_of(version: &FileVersion) -> Vec<Thumbnail> {
    let stored: Vec<ferry_db::versions::ThumbnailRecord> =
        serde_json::from_value(version.thumbnails.clone()).unwrap_or_default();
    let item = FileId(version.file_id);
    stored
        .into_iter()
        .map(|t| Thumbnail {
            url: format!(
                "/internal/services/documents/v1/companies/{}/item/{item}/thumbnails/{}?version_id={}",
                version.tenant_id, t.index, version.id
            ),
            full_url: None,
            index: t.index,
            id: t.id,
            kind: t.kind,
            size: t.size,
            width: t.width,
            height: t.height,
        })
        .collect()
}

/// A drive item: a directory or a file.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriveItem {
    /// `img_…` for files (the ids imports return), a UUID for directories, or `root` / `trash`.
    pub id: String,
    #[schema(format = Uuid)]
    pub company_id: String,
    /// The directory it is in; `root` at the top level (empty for `root` and `trash` themselves).
    pub parent_id: String,
    pub in_trash: bool,
    pub is_directory: bool,
    pub name: String,
    /// The name's extension, without the dot (empty when it has none).
    pub extension: String,
    pub description: String,
    pub tags: Vec<String>,
    #[schema(format = DateTime)]
    pub added: String,
    #[schema(format = DateTime)]
    pub last_modified: String,
    /// The latest version of a file (null for directories and for a file whose import has not finished).
    pub last_version_cache: Option<DriveItemVersion>,
    pub access_info: AccessInfo,
    /// A file's size in bytes (absent for directories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

fn extension_of(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => extension.to_owned(),
        _ => String::new(),
    }
}

impl DriveItem {
    /// The virtual directory `root` or `trash`.
    pub fn virtual_directory(id: &str, company_id: &str) -> Self {
        let epoch = timestamp(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        DriveItem {
            id: id.to_owned(),
            company_id: company_id.to_owned(),
            parent_id: String::new(),
            in_trash: id == TRASH_ID,
            is_directory: true,
            name: id.to_owned(),
            extension: String::new(),
            description: String::new(),
            tags: Vec::new(),
            added: epoch.clone(),
            last_modified: epoch,
            last_version_cache: None,
            access_info: AccessInfo::of(None),
            size: None,
        }
    }

    pub fn directory(folder: &Folder) -> Self {
        DriveItem {
            id: folder.id.to_string(),
            company_id: folder.tenant_id.to_string(),
            parent_id: folder.parent_id.map_or_else(|| ROOT_ID.to_owned(), |id| id.to_string()),
            in_trash: folder.trashed_at.is_some(),
            is_directory: true,
            name: folder.name.clone(),
            extension: String::new(),
            description: folder.description.clone(),
            tags: Vec::new(),
            added: timestamp(folder.created_at),
            last_modified: timestamp(folder.updated_at),
            last_version_cache: None,
            access_info: AccessInfo::of(folder.access_info.as_ref()),
            size: None,
        }
    }

    /// A file item; `latest` is its current version when the caller has it.
    pub fn file(file: &StoredFile, latest: Option<&FileVersion>) -> Self {
        DriveItem {
            id: FileId(file.id).to_string(),
            company_id: file.tenant_id.to_string(),
            parent_id: file.folder_id.map_or_else(|| ROOT_ID.to_owned(), |id| id.to_string()),
            in_trash: file.trashed_at.is_some(),
            is_directory: false,
            name: file.name.clone(),
            extension: extension_of(&file.name),
            description: file.description.clone(),
            tags: file.tags.clone(),
            added: timestamp(file.created_at),
            last_modified: timestamp(file.updated_at),
            last_version_cache: latest.map(DriveItemVersion::from),
            access_info: AccessInfo::of(file.access_info.as_ref()),
            size: Some(file.size_bytes.unwrap_or(0)),
        }
    }
}

/// `GET /item/{id}`: the item, a file's versions (newest first) and a directory's children (directories first,
/// then files, each by name).
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemDetails {
    pub item: DriveItem,
    pub versions: Vec<DriveItemVersion>,
    pub children: Vec<DriveItem>,
    /// True when the directory has more children than the 1000 of each kind listed.
    pub children_truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_is_what_follows_the_last_dot_of_a_name_with_a_stem() {
        assert_eq!(extension_of("report.final.pdf"), "pdf");
        assert_eq!(extension_of(".bashrc"), "");
        assert_eq!(extension_of("README"), "");
    }
}

/// The item properties a client sets: when creating (then `parent_id` defaults to `root`), as the `item` part of
/// a multipart `POST /item` (always a file), and as the body of `POST /item/{id}` (only what changes; `parent_id`
/// moves the item, and a directory cannot move under itself or one of its descendants). The other item fields
/// (`id`, `company_id`, `added`, ...) are the server's and are ignored when sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ItemProperties {
    /// `root` or a live directory's id.
    #[schema(pattern = r"^(root|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub parent_id: Option<String>,
    /// 1 to 255 characters, not blank, without `/` (surrounding ASCII whitespace is trimmed). A new file's
    /// default is its version's name, else the part's filename.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: Option<String>,
    /// At most 4096 characters.
    #[schema(max_length = 4096, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    #[schema(max_items = 50)]
    pub tags: Option<Vec<crate::routes::job_dto::Tag>>,
    /// The share link (`POST /item/{id}` only, and only with an API key).
    pub access_info: Option<AccessInfoUpdate>,
}

/// The `item` of a JSON `POST /item`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ItemFields {
    #[serde(flatten)]
    pub properties: ItemProperties,
    /// True to create a directory (default false: an empty file; upload content with multipart instead).
    pub is_directory: Option<bool>,
}

/// What a client may say about a new version's content (the rest is measured from the bytes).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VersionFields {
    pub file_metadata: Option<VersionMetadataFields>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VersionMetadataFields {
    /// The version's file name (default: the part's filename, else the item's name).
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: Option<String>,
    /// The content type (default: the part's, else `application/octet-stream`).
    #[schema(max_length = 255, pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    pub mime: Option<String>,
}

/// `POST /item` as JSON (a directory) or as `multipart/form-data` with parts `item` (this object's `item`),
/// `version` (optional) and `file` (the content of a file item).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateItemRequest {
    #[schema(required = true, value_type = ItemFields)]
    pub item: Option<ItemFields>,
    pub version: Option<VersionFields>,
}

/// The `multipart/form-data` form of `POST /item`, as the handler collects it: the JSON parts `item` and
/// `version` (both optional) and the content in `file` (streamed to the store). Any other part is a 400.
#[derive(Default, ToSchema)]
pub struct ItemUploadForm {
    #[schema(value_type = Option<ItemProperties>)]
    pub item: Option<ItemProperties>,
    #[schema(value_type = Option<VersionFields>)]
    pub version: Option<VersionFields>,
    #[schema(value_type = String, format = Binary, required = true)]
    pub file: Option<crate::routes::files::dto::UploadedContent>,
}

impl ItemUploadForm {
    pub const PARTS: [&str; 3] = ["item", "version", "file"];
}

/// The `multipart/form-data` form of `POST /item/{id}/version`: `version` (JSON, optional) and `file` (the new
/// content). Any other part is a 400.
#[derive(Default, ToSchema)]
pub struct VersionUploadForm {
    #[schema(value_type = Option<VersionFields>)]
    pub version: Option<VersionFields>,
    #[schema(value_type = String, format = Binary, required = true)]
    pub file: Option<crate::routes::files::dto::UploadedContent>,
}

/// A JSON `POST /item/{id}/version`: a new version made of content this company already stores (another
/// version's `file_id`); the two versions share the bytes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewVersionRequest {
    /// The `file_id` of an existing version of this company.
    #[schema(format = Uuid)]
    pub file_id: String,
    pub file_metadata: Option<VersionMetadataFields>,
}

/// What `DELETE /item/{id}` did: put a live item in the trash, or deleted a trashed one forever.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeleteResult {
    Trashed(Box<DriveItem>),
    Deleted(DeletedItems),
}

/// How many items were deleted forever.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedItems {
    pub directories: usize,
    pub files: usize,
}

/// `POST /tabs/{tab_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TabRequest {
    /// Must be the path's company when sent.
    #[schema(format = Uuid)]
    pub company_id: Option<String>,
    /// Must be the path's tab id when sent.
    pub tab_id: Option<String>,
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*$")]
    pub channel_id: String,
    /// The file or directory the tab shows.
    #[schema(
        pattern = "^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub item_id: String,
    #[schema(pattern = "^(read|write)$")]
    pub level: String,
}

/// A tab's configuration, with the token that grants its level on its item's subtree.
#[derive(Debug, Serialize, ToSchema)]
pub struct TabConfiguration {
    #[schema(format = Uuid)]
    pub company_id: String,
    pub tab_id: String,
    pub channel_id: String,
    pub item_id: String,
    #[schema(pattern = "^(read|write)$")]
    pub level: String,
    /// Send as `?twake_tab_token=`.
    pub token: String,
}

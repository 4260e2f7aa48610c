//! The connection endpoints' bodies: what the handlers return, and what the OpenAPI document shows.

use ferry_drive::DriveFile;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::oauth::dto::ConnectionView;
use crate::routes::{Page, timestamp};

/// One page of connections.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<ConnectionView>,
    /// The same list, under the key older clients read.
    pub connections: Vec<ConnectionView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl From<Page<ConnectionView>> for ConnectionList {
    fn from(page: Page<ConnectionView>) -> Self {
        let connections = page.items.clone();
        ConnectionList {
            items: page.items,
            connections,
            total_count: page.total_count,
            limit: page.limit,
            offset: page.offset,
            has_more: page.has_more,
        }
    }
}

/// A file or folder of the connected drive.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = BrowseFile)]
pub struct BrowseEntry {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: Option<u64>,
    #[schema(format = DateTime)]
    pub modified_at: Option<String>,
    pub is_folder: bool,
    pub web_view_link: Option<String>,
    pub thumbnail_url: Option<String>,
    /// False for folders and what the importer cannot take; true for binary files and for Docs, Sheets,
    /// Slides and Drawings (exported on import).
    pub is_importable: bool,
}

impl From<DriveFile> for BrowseEntry {
    fn from(file: DriveFile) -> Self {
        let is_folder = file.is_folder();
        // Binary files download as they are; Docs, Sheets, Slides and Drawings are exported on import.
        let is_importable = !is_folder
            && !file.trashed
            && (!file.is_google_workspace() || crate::routes::jobs::is_exportable_workspace(&file.mime_type));
        BrowseEntry {
            is_folder,
            is_importable,
            size_bytes: file.size,
            modified_at: file.modified_time.map(timestamp),
            web_view_link: file.web_view_link,
            thumbnail_url: file.thumbnail_link,
            mime_type: file.mime_type,
            name: file.name,
            id: file.id,
        }
    }
}

/// One folder on the way from the root to the folder browsed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Breadcrumb {
    pub id: String,
    pub name: String,
}

/// One page of a folder of the connected drive.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrowseResponse {
    /// On the first page of the root, `shared_with_me` and the user's shared drives come first as folders.
    pub files: Vec<BrowseEntry>,
    pub next_page_token: Option<String>,
    pub current_folder_id: Option<String>,
    /// Root → current folder.
    pub breadcrumbs: Vec<Breadcrumb>,
    #[schema(example = "google_drive")]
    pub provider: String,
}

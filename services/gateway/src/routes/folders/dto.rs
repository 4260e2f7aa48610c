//! The folder endpoints' bodies: what the handlers deserialize and return, and what the OpenAPI document shows.

use ferry_db::store::Folder;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::timestamp;

/// Longest folder name, in characters.
pub const MAX_FOLDER_NAME_CHARS: usize = 255;

/// A folder of the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// The folder it is in; null at the top level.
    #[schema(pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub parent_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Folder> for FolderView {
    fn from(folder: &Folder) -> Self {
        FolderView {
            id: folder.id.to_string(),
            name: folder.name.clone(),
            parent_id: folder.parent_id.map(|p| p.to_string()),
            created_at: timestamp(folder.created_at),
            updated_at: timestamp(folder.updated_at),
        }
    }
}

/// One page of folders.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderList {
    pub items: Vec<FolderView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl From<crate::routes::Page<FolderView>> for FolderList {
    fn from(page: crate::routes::Page<FolderView>) -> Self {
        FolderList {
            items: page.items,
            total_count: page.total_count,
            limit: page.limit,
            offset: page.offset,
            has_more: page.has_more,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateFolderRequest {
    /// 1 to 255 characters, without `/` (surrounding ASCII whitespace is trimmed).
    #[schema(value_type = String, min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: Option<String>,
    /// Creates the folder inside this one; absent or null: at the top level. Older clients' `col_…` form is
    /// accepted too.
    #[schema(pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub parent_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameFolderRequest {
    /// 1 to 255 characters, without `/` (surrounding ASCII whitespace is trimmed).
    #[schema(value_type = String, min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: Option<String>,
}

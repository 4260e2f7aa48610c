//! Request and response bodies of the libraries API (seed 003), in the seed's camelCase.

use ferry_db::libraries::Library;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::routes::timestamp;

/// Longest library name, in characters.
pub const MAX_LIBRARY_NAME_CHARS: usize = 255;
/// Longest natural id, in characters.
pub const MAX_NATURAL_ID_CHARS: usize = 100;
/// Shortest scheduled sync interval.
pub const MIN_SYNC_INTERVAL_SECS: i32 = 60;
/// Longest scheduled sync interval (a week).
pub const MAX_SYNC_INTERVAL_SECS: i32 = 7 * 24 * 3600;

/// A library: a named directory of the store that mirrors one Drive folder.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryView {
    #[schema(format = Uuid)]
    pub id: String,
    /// The client's own id for the library, usable in paths instead of `id`.
    pub natural_id: Option<String>,
    pub name: String,
    /// The directory item holding the library's files (the documents API's item id).
    #[schema(format = Uuid)]
    pub root_item_id: String,
    /// The integration the library syncs through (`GET /api/integrations`).
    #[schema(format = Uuid)]
    pub integration_id: Option<String>,
    /// The cloud-storage connection and Drive folder it mirrors, once linked.
    #[schema(format = Uuid)]
    pub connection_id: Option<String>,
    pub folder_id: Option<String>,
    /// The shared drive holding the folder; null for My Drive.
    pub drive_id: Option<String>,
    /// Seconds between scheduled syncs; null: only when asked.
    pub sync_interval_secs: Option<i32>,
    pub last_sync_at: Option<String>,
    pub last_sync_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Library> for LibraryView {
    fn from(library: &Library) -> Self {
        LibraryView {
            id: library.id.to_string(),
            natural_id: library.natural_id.clone(),
            name: library.name.clone(),
            root_item_id: library.root_folder_id.to_string(),
            integration_id: library.integration_id.map(|id| id.to_string()),
            connection_id: library.connection_id.map(|id| id.to_string()),
            folder_id: library.drive_folder_id.clone(),
            drive_id: library.drive_id.clone(),
            sync_interval_secs: library.sync_interval_secs,
            last_sync_at: library.last_sync_at.map(timestamp),
            last_sync_error: library.last_sync_error.clone(),
            created_at: timestamp(library.created_at),
            updated_at: timestamp(library.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryList {
    pub libraries: Vec<LibraryView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
}

/// `POST /api/libraries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLibraryRequest {
    /// 1 to 255 characters, not blank, without `/`; also the name of the library's directory.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: String,
    /// Letters, digits, `.`, `_` and `-`, starting with a letter or digit (1 to 100); unique in the tenant; not a
    /// UUID (those name libraries by id).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub natural_id: Option<String>,
}

/// A field that may be absent (unchanged), null (cleared) or set.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// [`present`] for a whole number: JSON has one number type, so `3600.0` is 3600 (as the schema's `integer` says),
/// while `3600.5` or a number beyond `i32` is refused.
fn present_whole_number<'de, D>(deserializer: D) -> Result<Option<Option<i32>>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(number) = Option::<f64>::deserialize(deserializer)? else { return Ok(Some(None)) };
    if number.fract() != 0.0 || number < f64::from(i32::MIN) || number > f64::from(i32::MAX) {
        return Err(serde::de::Error::custom(format!("{number} is not a whole number of seconds")));
    }
    Ok(Some(Some(number as i32)))
}

/// `PATCH /api/libraries/{id}`: only what changes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateLibraryRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^/\u0000]*[^/\u0000 \t\n\f\r][^/\u0000]*$")]
    pub name: Option<String>,
    /// A new natural id, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub natural_id: Option<Option<String>>,
    /// Seconds between scheduled syncs (60 to 604800), or null for none.
    #[serde(default, deserialize_with = "present_whole_number")]
    #[schema(value_type = Option<i32>, nullable, minimum = 60, maximum = 604800)]
    pub sync_interval_secs: Option<Option<i32>>,
}

/// An integration: how Ferry reaches a cloud (the configured Google OAuth client). Never carries a secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^google-drive$")]
    pub kind: String,
    /// Built into this deployment (from its configuration), not created through the API.
    pub embedded: bool,
    /// The library asked about, on `GET /api/libraries/{id}/integration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub library_id: Option<String>,
    pub auth_type: String,
    pub client_id: String,
    pub auth_uri: String,
    pub token_uri: String,
    /// The OAuth scopes asked for, space-separated.
    pub scope: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
}

/// `PUT /api/libraries/{id}/integration`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetIntegrationRequest {
    #[schema(format = Uuid)]
    pub integration_id: String,
}

/// `PUT /api/libraries/{id}/connection`: which connection of the tenant, and which Drive folder to mirror.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkConnectionRequest {
    /// A cloud-storage connection of the tenant (`GET /api/v2/cloud-storage/connections`).
    #[schema(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub connection_id: String,
    /// `root` (My Drive) or a Drive folder id, shared drives included.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_-]+$")]
    pub folder_id: String,
}

/// A library's connection, as the seed shows it, with the folder it mirrors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryConnectionView {
    /// The cloud-storage connection.
    #[schema(format = Uuid)]
    pub id: String,
    /// The connected account's email (its id when Drive gave no email).
    pub owner_id: String,
    #[schema(format = Uuid)]
    pub integration_id: Option<String>,
    pub token_expires_at: Option<String>,
    /// Google does not say when a refresh token expires: always null.
    pub refresh_token_expires_at: Option<String>,
    pub last_authorized_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub folder_id: String,
    pub drive_id: Option<String>,
    /// True when the account must be connected again before the library can sync.
    pub needs_reauth: bool,
}

/// `GET /api/libraries/{id}/account`: the Drive account behind the library's connection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub account_id: Option<String>,
}

/// `POST /api/libraries/{id}/_sync` (an empty body is `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    /// List the whole folder and move to the library's trash whatever the listing lacks (default false).
    pub purge: Option<bool>,
    /// A name of the caller's choosing for following the run at `GET /api/progress/{progress}`.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9._-]+$")]
    pub progress: Option<String>,
}

/// One file a run could not bring over.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncErrorView {
    /// The Drive file id.
    pub file_id: String,
    pub name: String,
    pub code: String,
    pub message: String,
}

/// A finished run's counts; each file counts once per run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    /// Files of the library in step with Drive after the run.
    pub synced_files: i64,
    /// New files (and files back from Drive's trash).
    pub added_files: i64,
    /// Files with new content, renamed or moved.
    pub updated_files: i64,
    /// Files that left the folder (trashed, deleted or moved out), now in the library's trash.
    pub deleted_files: i64,
    pub errors: Vec<SyncErrorView>,
    /// The job carrying the run's transfers (`GET /api/v2/cloud-storage/jobs/{jobId}`).
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    /// completed | partial | failed | cancelled
    pub status: String,
}

/// `202` for `Prefer: respond-async` (or a run still going when the wait ends).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncAccepted {
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    pub progress: Option<String>,
}

/// A run as it goes: `GET /api/progress/{progress}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncProgressView {
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    #[schema(format = Uuid)]
    pub library_id: String,
    /// pending | in_progress | completed | partial | failed | cancelled
    pub status: String,
    /// The folder was read and the run's transfers are known (`totalFiles`).
    pub planned: bool,
    pub total_files: i32,
    pub completed_files: i32,
    pub failed_files: i32,
    /// Why the run failed, when it did.
    pub error: Option<String>,
    /// The counts, once the run has finished.
    pub result: Option<SyncResult>,
}

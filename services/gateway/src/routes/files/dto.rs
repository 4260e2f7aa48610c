//! The files endpoints' bodies: what the handlers deserialize and return, and what the OpenAPI document shows.

use ferry_db::files::StoredFile;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::routes::{Page, timestamp};

/// Longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// A file of Ferry's store.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StoredFile)]
pub struct FileView {
    #[schema(example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d", pattern = "^img_[0-9a-f]{32}$")]
    pub id: String,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    /// `pending` (an import is still bringing its bytes), `ready` or `failed`.
    #[schema(pattern = "^(pending|ready|failed)$")]
    pub status: String,
    pub tags: Vec<String>,
    #[schema(format = Uuid)]
    pub folder_id: Option<String>,
    /// Where an imported file came from.
    pub source: Option<FileSource>,
    /// The import job's `provider_metadata` (stored once per job).
    #[schema(value_type = Option<Object>)]
    pub provider_metadata: Option<Value>,
    /// Why the file has no content (a failed import).
    pub error: Option<FileError>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// What the image worker read from an image's latest version (null until it has, and for other files).
    pub metadata: Option<ImageMetadata>,
    /// Why the image worker refused the latest version's bytes (`code: message`), when it did.
    pub metadata_error: Option<String>,
}

/// An image's dimensions (as displayed) and EXIF facts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageMetadata {
    /// The media type found from the bytes.
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// EXIF capture time (with its offset when the camera recorded one).
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
}

impl ImageMetadata {
    /// The facts recorded with a version, if any.
    pub fn of(version: &ferry_db::versions::FileVersion) -> Option<Self> {
        let facts: ferry_db::versions::ImageFactsRecord = serde_json::from_value(version.image.clone()?).ok()?;
        Some(ImageMetadata {
            format: facts.format,
            width: facts.width,
            height: facts.height,
            taken_at: facts.taken_at,
            camera_make: facts.camera_make,
            camera_model: facts.camera_model,
        })
    }
}

impl FileView {
    /// Adds what the image worker recorded for the latest version.
    pub fn with_version(mut self, latest: Option<&ferry_db::versions::FileVersion>) -> Self {
        if let Some(version) = latest {
            self.metadata = ImageMetadata::of(version);
            self.metadata_error = version.image_refusal.clone();
        }
        self
    }

    /// The stored file as the API shows it, with its import job's `provider_metadata`.
    pub fn new(file: &StoredFile, provider_metadata: Option<&Value>) -> Self {
        FileView {
            id: file.file_id().to_string(),
            name: file.name.clone(),
            mime_type: file.mime_type.clone(),
            size_bytes: file.size_bytes,
            sha256: file.sha256.clone(),
            md5: file.md5.clone(),
            status: file.status.as_str().to_owned(),
            tags: file.tags.clone(),
            folder_id: file.folder_id.map(|id| id.to_string()),
            source: file.source_file_id.as_ref().map(|file_id| FileSource {
                connection_id: file.source_connection_id.map(|id| id.to_string()),
                file_id: file_id.clone(),
            }),
            provider_metadata: provider_metadata.cloned(),
            error: file
                .error_code
                .as_ref()
                .map(|code| FileError { code: code.clone(), message: file.error_message.clone() }),
            created_at: timestamp(file.created_at),
            updated_at: timestamp(file.updated_at),
            metadata: None,
            metadata_error: None,
        }
    }
}

/// The drive file an imported file came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileSource {
    #[schema(format = Uuid)]
    pub connection_id: Option<String>,
    /// The Drive file id.
    pub file_id: String,
}

/// Why a file failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileError {
    pub code: String,
    pub message: Option<String>,
}

/// One page of files.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub items: Vec<FileView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl From<Page<FileView>> for FileList {
    fn from(page: Page<FileView>) -> Self {
        FileList {
            items: page.items,
            total_count: page.total_count,
            limit: page.limit,
            offset: page.offset,
            has_more: page.has_more,
        }
    }
}

/// A field that may be left out but not sent as `null` (which would say neither "keep" nor a new value).
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)?
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("must not be null; leave the field out to keep its value"))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Renames, retags or moves a file: at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FileUpdateRequest, min_properties = 1)]
pub struct FileUpdateRequest {
    /// The new name (not null: leave the field out to keep the name).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\u0000 \t\n\f\r][^\u0000]*$",
        nullable = false
    )]
    pub name: Option<String>,
    /// Replaces the file's tags (at most 50; `[]` removes them all; not null).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Vec<crate::routes::job_dto::Tag>, max_items = 50, required = false)]
    pub tags: Option<Vec<crate::routes::job_dto::Tag>>,
    /// Moves the file into this folder (a UUID); `null` or `""` takes it out of any folder. Alias: `collection_id`.
    #[serde(default, deserialize_with = "present", alias = "collection_id")]
    #[schema(value_type = Option<String>, pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub folder_id: Option<Option<String>>,
}

/// The `multipart/form-data` upload as the handler collects it, part by part. A part with any other name is
/// a 400 (the document says `additionalProperties: false`), so a misspelt part is never silently dropped.
#[derive(Default, ToSchema)]
pub struct UploadForm {
    /// The content (exactly one part); its filename and content type are kept.
    #[schema(value_type = String, format = Binary, required = true)]
    pub file: Option<UploadedContent>,
    /// Defaults to the part's filename (also when blank). At most 16 KiB, like every text part.
    #[schema(pattern = r"^[^\u0000]*$")]
    pub name: Option<String>,
    /// Comma-separated.
    #[schema(pattern = r"^[^\u0000]*$")]
    pub tags: Option<String>,
    /// An existing folder (a UUID) to put the file in; empty means none. (Older clients' `col_…` form too.)
    #[schema(value_type = String, pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", required = false)]
    pub folder_id: Option<String>,
}

impl UploadForm {
    /// The part names the form has.
    pub const PARTS: [&str; 4] = ["file", "name", "tags", "folder_id"];
}

/// The `file` part once its bytes are in the blob store.
pub struct UploadedContent {
    pub blob: ferry_storage::StoredBlob,
    pub content_type: Option<String>,
    pub original_name: Option<String>,
}

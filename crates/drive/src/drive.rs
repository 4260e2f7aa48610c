//! Drive v3 calls Ferry needs: list, get, ranged download, folder create, resumable upload.
//!
//! The client never retries by itself: callers own the backoff policy and use
//! [`DriveError::is_retryable`] to decide.

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};
use reqwest::{Response, StatusCode};
use serde_json::json;
use tracing::debug;
use url::Url;

use crate::error::{classify_drive_error, drive_transport};
use crate::types::{WireAbout, WireChangeList, WireFile, WireFileList, WireGeneratedIds, WireStartPageToken};
use crate::{About, Change, ChangeList, Download, DriveError, DriveFile, FileList, NewDriveFile, UploadProgress};

/// MIME type of Drive folders.
pub const FOLDER_MIME_TYPE: &str = "application/vnd.google-apps.folder";
/// Prefix shared by every Google-native MIME type (Docs, Sheets, folders, shortcuts, ...).
pub const GOOGLE_APPS_MIME_PREFIX: &str = "application/vnd.google-apps.";

/// Fields requested for every File: without a mask Drive returns only kind, id, name, mimeType.
const FILE_FIELDS: &str = "id,name,mimeType,size,md5Checksum,sha256Checksum,modifiedTime,createdTime,parents,webViewLink,thumbnailLink,trashed,driveId,\
     headRevisionId,version";
/// Error bodies are small JSON documents; cap what we read from a misbehaving server.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The Drive root URL given to [`DriveClient::new`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Drive root URL: {0}")]
pub struct InvalidRootUrl(String);

/// Drive v3 client. Cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct DriveClient {
    /// Always ends with '/', e.g. `https://www.googleapis.com/`.
    root: Url,
    http: reqwest::Client,
}

impl DriveClient {
    /// `drive_root_url` is Drive's root (not the `drive/v3/` base): `https://www.googleapis.com/`
    /// or an emulator's `http://127.0.0.1:8088/`. A missing trailing '/' is added.
    pub fn new(drive_root_url: &str, http: reqwest::Client) -> Result<Self, InvalidRootUrl> {
        let mut root = Url::parse(drive_root_url).map_err(|e| InvalidRootUrl(format!("{drive_root_url}: {e}")))?;
        if !matches!(root.scheme(), "http" | "https") || root.cannot_be_a_base() {
            return Err(InvalidRootUrl(format!("{drive_root_url}: must be an http(s) URL")));
        }
        if !root.path().ends_with('/') {
            let path = format!("{}/", root.path());
            root.set_path(&path);
        }
        root.set_query(None);
        root.set_fragment(None);
        Ok(DriveClient { root, http })
    }

    /// The normalised root URL (always ends with '/').
    pub fn root_url(&self) -> &str {
        self.root.as_str()
    }

    /// One page of the non-trashed children of `folder_id` (`"root"` = My Drive), folders
    /// first, then by name. `page_size` is clamped to Drive's 1..=1000.
    pub async fn list_folder(
        &self,
        token: &str,
        folder_id: &str,
        page_token: Option<&str>,
        page_size: u32,
    ) -> Result<FileList, DriveError> {
        let q = format!("'{}' in parents and trashed = false", escape_q(folder_id));
        let fields = format!("nextPageToken,files({FILE_FIELDS})");
        let page_size = page_size.clamp(1, 1000).to_string();
        let mut query: Vec<(&str, &str)> = vec![
            ("q", &q),
            ("orderBy", "folder,name"),
            ("pageSize", &page_size),
            ("fields", &fields),
            ("spaces", "drive"),
            // The folder may be in a shared drive: the default corpus (`user`) would not list its items.
            ("corpora", "allDrives"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        if let Some(page_token) = page_token {
            query.push(("pageToken", page_token));
        }
        debug!(folder_id, "drive files.list");
        let resp = self.send("files.list", self.http.get(self.files_url(&[])).bearer_auth(token).query(&query)).await?;
        let list: WireFileList = json_body(resp).await?;
        Ok(FileList {
            files: list.files.into_iter().map(DriveFile::from).collect(),
            next_page_token: list.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// The position of the changes feed now, for the user's corpus (My Drive and what is shared with them) or,
    /// with `drive_id`, for that shared drive. Take it before listing: every change after it will be reported.
    pub async fn start_page_token(&self, token: &str, drive_id: Option<&str>) -> Result<String, DriveError> {
        let mut url = self.root.clone();
        extend_path(&mut url, &["drive", "v3", "changes", "startPageToken"]);
        let mut query: Vec<(&str, &str)> = vec![("supportsAllDrives", "true")];
        if let Some(drive_id) = drive_id {
            query.push(("driveId", drive_id));
        }
        let resp = self.send("changes.getStartPageToken", self.http.get(url).bearer_auth(token).query(&query)).await?;
        Ok(json_body::<WireStartPageToken>(resp).await?.start_page_token)
    }

    /// One page of changes from `page_token`, removals included, across all drives (or only `drive_id`'s).
    /// Drive-level changes (no file) are left out.
    pub async fn list_changes(
        &self,
        token: &str,
        page_token: &str,
        drive_id: Option<&str>,
        page_size: u32,
    ) -> Result<ChangeList, DriveError> {
        let mut url = self.root.clone();
        extend_path(&mut url, &["drive", "v3", "changes"]);
        let fields =
            format!("nextPageToken,newStartPageToken,changes(changeType,removed,fileId,driveId,file({FILE_FIELDS}))");
        let page_size = page_size.clamp(1, 1000).to_string();
        let mut query: Vec<(&str, &str)> = vec![
            ("pageToken", page_token),
            ("pageSize", &page_size),
            ("fields", &fields),
            ("includeRemoved", "true"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
            ("spaces", "drive"),
        ];
        if let Some(drive_id) = drive_id {
            query.push(("driveId", drive_id));
        }
        let resp = self.send("changes.list", self.http.get(url).bearer_auth(token).query(&query)).await?;
        let list: WireChangeList = json_body(resp).await?;
        let changes = list
            .changes
            .into_iter()
            .filter(|c| c.change_type.as_deref().is_none_or(|t| t == "file"))
            .filter_map(|c| {
                let file = c.file.map(DriveFile::from);
                let file_id = c.file_id.or_else(|| file.as_ref().map(|f| f.id.clone()))?;
                Some(Change { file_id, removed: c.removed, file, drive_id: c.drive_id })
            })
            .collect();
        Ok(ChangeList {
            changes,
            next_page_token: list.next_page_token.filter(|t| !t.is_empty()),
            new_start_page_token: list.new_start_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// Metadata of one file or folder.
    pub async fn get_file(&self, token: &str, file_id: &str) -> Result<DriveFile, DriveError> {
        debug!(file_id, "drive files.get");
        let resp = self
            .send(
                "files.get",
                self.http
                    .get(self.files_url(&[file_id]))
                    .bearer_auth(token)
                    .query(&[("fields", FILE_FIELDS), ("supportsAllDrives", "true")]),
            )
            .await?;
        Ok(json_body::<WireFile>(resp).await?.into())
    }

    /// Streams the content of a binary file from `offset` (a resumed download sends
    /// `Range: bytes=offset-`). Workspace files fail with `Forbidden { reason:
    /// "fileNotDownloadable" }`; they need export.
    pub async fn download(&self, token: &str, file_id: &str, offset: u64) -> Result<Download, DriveError> {
        debug!(file_id, offset, "drive files.get alt=media");
        let mut req = self
            .http
            .get(self.files_url(&[file_id]))
            .bearer_auth(token)
            .query(&[("alt", "media"), ("supportsAllDrives", "true")]);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
        }
        let started = Instant::now();
        let span = drive_span("files.get_media");
        let resp = transmit("files.get_media", started, req, &span).await?;
        let status = resp.status();
        let result = download_response(resp, offset).await;
        observe(&span, "files.get_media", started, Some(status), result.as_ref().err());
        result
    }

    /// Streams a Google Workspace file converted to `mime_type` (Drive caps exports at 10 MB:
    /// `Forbidden { reason: "exportSizeLimitExceeded" }`). Exports cannot be resumed by range.
    pub async fn export(&self, token: &str, file_id: &str, mime_type: &str) -> Result<Download, DriveError> {
        debug!(file_id, mime_type, "drive files.export");
        let resp = self
            .send(
                "files.export",
                self.http
                    .get(self.files_url(&[file_id, "export"]))
                    .bearer_auth(token)
                    .query(&[("mimeType", mime_type)]),
            )
            .await?;
        Ok(Download {
            total_size: header_u64(&resp, CONTENT_LENGTH.as_str()),
            stream: resp.bytes_stream().map_err(transport).boxed(),
        })
    }

    /// Streams a URL Drive handed out that needs the bearer token, such as an entry of a file's `exportLinks`
    /// (those are not subject to files.export's 10 MB cap). Errors are classified like every other call.
    pub async fn download_url(&self, token: &str, url: &Url) -> Result<Download, DriveError> {
        debug!(%url, "drive download by link");
        let resp = self.send("files.export_link", self.http.get(url.clone()).bearer_auth(token)).await?;
        Ok(Download {
            total_size: header_u64(&resp, CONTENT_LENGTH.as_str()),
            stream: resp.bytes_stream().map_err(transport).boxed(),
        })
    }

    /// Streams a Workspace file converted to `mime_type` through its `exportLinks` entry: the documented way past
    /// files.export's 10 MB cap. The link is only followed (with the token) to a Google host or the configured
    /// Drive root's origin; no link for `mime_type` is `NotFound`.
    pub async fn export_via_link(&self, token: &str, file_id: &str, mime_type: &str) -> Result<Download, DriveError> {
        let resp = self
            .send(
                "files.get",
                self.http
                    .get(self.files_url(&[file_id]))
                    .bearer_auth(token)
                    .query(&[("fields", "exportLinks"), ("supportsAllDrives", "true")]),
            )
            .await?;
        let links: serde_json::Value = json_body(resp).await?;
        let link = links["exportLinks"][mime_type]
            .as_str()
            .and_then(|l| Url::parse(l).ok())
            .ok_or_else(|| DriveError::NotFound(format!("no export link to {mime_type} for {file_id}")))?;
        let google = link.scheme() == "https"
            && link.host_str().is_some_and(|h| h.ends_with(".google.com") || h.ends_with(".googleapis.com"));
        if !google && link.origin() != self.root.origin() {
            return Err(DriveError::Decode(format!("export link to an unexpected host: {:?}", link.host_str())));
        }
        self.download_url(token, &link).await
    }

    /// Pre-generates file ids (`count` clamped to 1..=1000) so creates can be retried safely.
    pub async fn generate_ids(&self, token: &str, count: u32) -> Result<Vec<String>, DriveError> {
        let count = count.clamp(1, 1000).to_string();
        let resp = self
            .send(
                "files.generateIds",
                self.http.get(self.files_url(&["generateIds"])).bearer_auth(token).query(&[
                    ("count", count.as_str()),
                    ("space", "drive"),
                    ("type", "files"),
                ]),
            )
            .await?;
        Ok(json_body::<WireGeneratedIds>(resp).await?.ids)
    }

    /// Creates a folder, with a pre-generated `id` when given (a retry then gets
    /// [`DriveError::AlreadyExists`]). `parent_id` `None` = My Drive root.
    pub async fn create_folder(
        &self,
        token: &str,
        id: Option<&str>,
        name: &str,
        parent_id: Option<&str>,
    ) -> Result<DriveFile, DriveError> {
        let mut meta = json!({"name": name, "mimeType": FOLDER_MIME_TYPE});
        if let Some(id) = id {
            meta["id"] = json!(id);
        }
        if let Some(parent) = parent_id {
            meta["parents"] = json!([parent]);
        }
        debug!(?id, ?parent_id, "drive files.create folder");
        let resp = self
            .send(
                "files.create",
                self.http
                    .post(self.files_url(&[]))
                    .bearer_auth(token)
                    .query(&[("fields", FILE_FIELDS), ("supportsAllDrives", "true")])
                    .json(&meta),
            )
            .await?;
        Ok(json_body::<WireFile>(resp).await?.into())
    }

    /// Opens a resumable upload session and returns its URI. The URI is a credential (chunks
    /// carry no Authorization header): store it like a token, never log it.
    pub async fn start_resumable_upload(
        &self,
        token: &str,
        file: &NewDriveFile,
        content_length: u64,
    ) -> Result<String, DriveError> {
        let mut meta = json!({"name": file.name, "mimeType": file.mime_type});
        if let Some(id) = &file.id {
            meta["id"] = json!(id);
        }
        if !file.parents.is_empty() {
            meta["parents"] = json!(file.parents);
        }
        let mut url = self.root.clone();
        extend_path(&mut url, &["upload", "drive", "v3", "files"]);
        debug!(file_id = ?file.id, content_length, "drive resumable upload start");
        let resp = self
            .send(
                "files.create_resumable",
                self.http
                    .post(url)
                    .bearer_auth(token)
                    .query(&[("uploadType", "resumable"), ("fields", FILE_FIELDS), ("supportsAllDrives", "true")])
                    .header("X-Upload-Content-Type", file.mime_type.as_str())
                    .header("X-Upload-Content-Length", content_length.to_string())
                    .json(&meta),
            )
            .await?;
        let request_url = resp.url().clone();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DriveError::Decode("resumable upload start returned no Location".to_owned()))?;
        // Google sends an absolute URI; resolve a relative one against the request.
        let session = request_url
            .join(location)
            .map_err(|e| DriveError::Decode(format!("invalid resumable session Location: {e}")))?;
        Ok(session.into())
    }

    /// Sends bytes `offset..offset+chunk.len()` of a `total_size`-byte upload. Every chunk but
    /// the last must be a multiple of 256 KiB. On `Incomplete`, continue from `committed`.
    pub async fn upload_chunk(
        &self,
        session_uri: &str,
        offset: u64,
        chunk: Bytes,
        total_size: u64,
    ) -> Result<UploadProgress, DriveError> {
        let len = chunk.len() as u64;
        let end = offset.checked_add(len).filter(|end| *end <= total_size).ok_or_else(|| DriveError::BadRequest {
            reason: "invalid_chunk".to_owned(),
            message: format!("chunk of {len} bytes at offset {offset} exceeds total size {total_size}"),
        })?;
        let content_range = if len == 0 {
            // Only a 0-byte file has nothing to send; otherwise this is a status query.
            format!("bytes */{total_size}")
        } else {
            format!("bytes {offset}-{}/{total_size}", end - 1)
        };
        debug!(offset, len, total_size, "drive resumable upload chunk");
        let started = Instant::now();
        let span = drive_span("upload.chunk");
        let req = self.http.put(session_uri).header(CONTENT_RANGE, content_range).body(chunk);
        let resp = transmit("upload.chunk", started, req, &span).await?;
        let status = resp.status();
        let result = upload_progress(resp).await;
        observe(&span, "upload.chunk", started, Some(status), result.as_ref().err());
        result
    }

    /// Sends bytes `offset..total_size` of a resumable upload as one streaming request (Ferry reads them from its
    /// own store, so nothing needs buffering to be sent again: after an interruption, ask
    /// [`DriveClient::upload_status`] what Drive holds and stream the rest). `body` must yield exactly
    /// `total_size - offset` bytes; an error from it aborts the request.
    pub async fn upload_stream<E>(
        &self,
        session_uri: &str,
        offset: u64,
        total_size: u64,
        body: futures::stream::BoxStream<'static, Result<Bytes, E>>,
    ) -> Result<UploadProgress, DriveError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        if offset >= total_size {
            return Err(DriveError::BadRequest {
                reason: "invalid_chunk".to_owned(),
                message: format!("nothing to send from offset {offset} of a {total_size}-byte upload"),
            });
        }
        debug!(offset, total_size, "drive resumable upload stream");
        let started = Instant::now();
        let span = drive_span("upload.stream");
        let req = self
            .http
            .put(session_uri)
            .header(CONTENT_RANGE, format!("bytes {offset}-{}/{total_size}", total_size - 1))
            .header(CONTENT_LENGTH, (total_size - offset).to_string())
            .body(reqwest::Body::wrap_stream(body));
        let resp = transmit("upload.stream", started, req, &span).await?;
        let status = resp.status();
        let result = upload_progress(resp).await;
        observe(&span, "upload.stream", started, Some(status), result.as_ref().err());
        result
    }

    /// Asks how many bytes of a resumable upload the server holds (after a failed chunk or a
    /// restart).
    pub async fn upload_status(&self, session_uri: &str, total_size: u64) -> Result<UploadProgress, DriveError> {
        debug!(total_size, "drive resumable upload status");
        let started = Instant::now();
        let span = drive_span("upload.status");
        let req = self
            .http
            .put(session_uri)
            .header(CONTENT_RANGE, format!("bytes */{total_size}"))
            .header(CONTENT_LENGTH, "0");
        let resp = transmit("upload.status", started, req, &span).await?;
        let status = resp.status();
        let result = upload_progress(resp).await;
        observe(&span, "upload.status", started, Some(status), result.as_ref().err());
        result
    }

    /// The account behind the token and its storage quota.
    pub async fn about(&self, token: &str) -> Result<About, DriveError> {
        let mut url = self.root.clone();
        extend_path(&mut url, &["drive", "v3", "about"]);
        let resp = self
            .send(
                "about.get",
                self.http
                    .get(url)
                    .bearer_auth(token)
                    .query(&[("fields", "user(displayName,emailAddress,permissionId),storageQuota")]),
            )
            .await?;
        let about: WireAbout = json_body(resp).await?;
        let user = about.user.unwrap_or_default();
        let quota = about.storage_quota.unwrap_or_default();
        Ok(About {
            email: user.email_address,
            display_name: user.display_name,
            account_id: user.permission_id,
            storage_limit: quota.limit,
            storage_usage: quota.usage,
        })
    }

    /// `{root}drive/v3/files[/segment...]`, each segment percent-encoded.
    fn files_url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        extend_path(&mut url, &["drive", "v3", "files"]);
        extend_path(&mut url, segments);
        url
    }

    /// Sends a request for the Drive API method `method` and turns non-2xx answers into typed errors, recording
    /// the call in `ferry_drive_request_duration_seconds`.
    async fn send(&self, method: &'static str, req: reqwest::RequestBuilder) -> Result<Response, DriveError> {
        let started = Instant::now();
        let span = drive_span(method);
        let resp = transmit(method, started, req, &span).await?;
        let status = resp.status();
        let result = if status.is_success() { Ok(resp) } else { Err(error_from(resp).await) };
        observe(&span, method, started, Some(status), result.as_ref().err());
        result
    }
}

/// The body of a `files.get?alt=media` answer as a [`Download`] starting at `offset`.
async fn download_response(resp: Response, offset: u64) -> Result<Download, DriveError> {
    let status = resp.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        // Resuming a download that already has every byte: nothing left to send.
        let total = content_range(&resp).and_then(|r| r.total);
        if total == Some(offset) {
            return Ok(Download { total_size: total, stream: stream::empty().boxed() });
        }
        return Err(error_from(resp).await);
    }
    if !status.is_success() {
        return Err(error_from(resp).await);
    }

    let (total_size, skip) = if status == StatusCode::PARTIAL_CONTENT {
        let range = content_range(&resp)
            .ok_or_else(|| DriveError::Decode("206 response without a valid Content-Range".to_owned()))?;
        if range.start != Some(offset) {
            return Err(DriveError::Decode(format!(
                "asked for bytes from {offset}, server sent from {:?}",
                range.start
            )));
        }
        (range.total, 0)
    } else {
        // 200: the whole file, even if we sent a Range. Skip what the caller already has.
        (header_u64(&resp, CONTENT_LENGTH.as_str()), offset)
    };

    let body = resp.bytes_stream().map_err(transport);
    let stream = if skip == 0 { body.boxed() } else { skip_prefix(body, skip).boxed() };
    Ok(Download { total_size, stream })
}

fn extend_path(url: &mut Url, segments: &[&str]) {
    // The root was checked to be a base URL in `new`, so this always succeeds.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
}

/// Escapes a value for a single-quoted string in a Drive `q` expression.
fn escape_q(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

fn transport(err: reqwest::Error) -> DriveError {
    drive_transport(err)
}

/// The span of one Drive call: its method, HTTP status and Google's error reason.
fn drive_span(method: &'static str) -> tracing::Span {
    tracing::info_span!(
        "drive.request",
        otel.name = %format!("drive {method}"),
        drive.method = method,
        http.response.status_code = tracing::field::Empty,
        google.error_reason = tracing::field::Empty,
    )
}

/// Sends `req` inside `span`, recording a call that got no answer at all.
async fn transmit(
    method: &'static str,
    started: Instant,
    req: reqwest::RequestBuilder,
    span: &tracing::Span,
) -> Result<Response, DriveError> {
    use tracing::Instrument;
    req.send().instrument(span.clone()).await.map_err(|err| {
        let err = transport(err);
        observe(span, method, started, None, Some(&err));
        err
    })
}

/// One Drive call in `ferry_drive_request_duration_seconds{method, status, reason}`: time to the response
/// headers; `status` is the HTTP status (`transport` when none came), `reason` Google's error reason (`none`).
fn observe(
    span: &tracing::Span,
    method: &'static str,
    started: Instant,
    status: Option<StatusCode>,
    error: Option<&DriveError>,
) {
    if let Some(code) = status {
        span.record("http.response.status_code", code.as_u16());
    }
    if let Some(error) = error {
        span.record("google.error_reason", error.reason());
    }
    let status = status.map_or_else(|| "transport".to_owned(), |s| s.as_u16().to_string());
    let reason = error.map_or("none", DriveError::reason).to_owned();
    metrics::histogram!("ferry_drive_request_duration_seconds", "method" => method, "status" => status, "reason" => reason)
        .record(started.elapsed().as_secs_f64());
}

async fn json_body<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, DriveError> {
    let bytes = resp.bytes().await.map_err(transport)?;
    serde_json::from_slice(&bytes).map_err(|e| DriveError::Decode(e.to_string()))
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error response and classifies it.
async fn error_from(resp: Response) -> DriveError {
    let status = resp.status();
    // Google sends delay-seconds; an HTTP date is not worth parsing here (the pacer backs off anyway).
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|secs| std::time::Duration::from_secs(secs.min(3600)));
    let body = read_bounded(resp, MAX_ERROR_BODY).await;
    classify_drive_error(status, &body, retry_after)
}

async fn read_bounded(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    // A broken error body still classifies by status, so read errors end the read quietly.
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

async fn upload_progress(resp: Response) -> Result<UploadProgress, DriveError> {
    match resp.status().as_u16() {
        200 | 201 => Ok(UploadProgress::Complete(json_body::<WireFile>(resp).await?.into())),
        308 => {
            let committed = match resp.headers().get(RANGE) {
                None => 0,
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(parse_committed_range)
                    .ok_or_else(|| DriveError::Decode(format!("unparseable upload Range header {v:?}")))?,
            };
            Ok(UploadProgress::Incomplete { committed })
        }
        404 | 410 => Err(DriveError::SessionExpired),
        _ => Err(error_from(resp).await),
    }
}

/// `bytes=0-N` (Google) or `0-N` -> N + 1 bytes committed.
fn parse_committed_range(value: &str) -> Option<u64> {
    let value = value.trim();
    let range = value.strip_prefix("bytes=").unwrap_or(value);
    let (start, end) = range.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse::<u64>().ok()?.checked_add(1)
}

#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    /// `None` for `bytes */total`.
    start: Option<u64>,
    total: Option<u64>,
}

fn content_range(resp: &Response) -> Option<ContentRange> {
    parse_content_range(resp.headers().get(CONTENT_RANGE)?.to_str().ok()?)
}

/// `bytes a-b/total`, `bytes a-b/*` or `bytes */total`.
fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some(ContentRange { start, total })
}

fn header_u64(resp: &Response, name: &str) -> Option<u64> {
    resp.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Drops the first `skip` bytes of a byte stream (a server that ignored our Range header).
fn skip_prefix<S>(body: S, skip: u64) -> impl futures::Stream<Item = Result<Bytes, DriveError>>
where
    S: futures::Stream<Item = Result<Bytes, DriveError>>,
{
    body.scan(skip, |remaining, item| {
        let out = match item {
            Ok(mut chunk) if *remaining > 0 => {
                let drop = usize::try_from(*remaining).unwrap_or(usize::MAX).min(chunk.len());
                *remaining -= drop as u64;
                let _ = chunk.split_to(drop);
                Ok(chunk)
            }
            other => other,
        };
        futures::future::ready(Some(out))
    })
    .try_filter(|chunk| futures::future::ready(!chunk.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_committed_range("bytes=0-262143"), Some(262_144));
        assert_eq!(parse_committed_range("0-0"), Some(1));
        assert_eq!(parse_committed_range("bytes=5-9"), None);
        assert_eq!(parse_committed_range("garbage"), None);
        assert_eq!(parse_content_range("bytes 10-19/20"), Some(ContentRange { start: Some(10), total: Some(20) }));
        assert_eq!(parse_content_range("bytes */0"), Some(ContentRange { start: None, total: Some(0) }));
        assert_eq!(parse_content_range("bytes 0-9/*"), Some(ContentRange { start: Some(0), total: None }));
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn escapes_q_strings() {
        assert_eq!(escape_q(r"a'b\c"), r"a\'b\\c");
    }

    #[test]
    fn normalises_root_url() {
        let http = reqwest::Client::new();
        let c = DriveClient::new("http://127.0.0.1:8088", http.clone()).expect("client");
        assert_eq!(c.root_url(), "http://127.0.0.1:8088/");
        assert_eq!(c.files_url(&["a b/c"]).as_str(), "http://127.0.0.1:8088/drive/v3/files/a%20b%2Fc");
        let c = DriveClient::new("http://h/prefix", http.clone()).expect("client");
        assert_eq!(c.files_url(&[]).as_str(), "http://h/prefix/drive/v3/files");
        assert!(DriveClient::new("mailto:x@y", http.clone()).is_err());
        assert!(DriveClient::new("not a url", http).is_err());
    }

    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let c = DriveClient::new("http://127.0.0.1:9/", reqwest::Client::new()).expect("client");
        assert_send(c.list_folder("t", "root", None, 10));
        assert_send(c.get_file("t", "f"));
        assert_send(c.download("t", "f", 1));
        assert_send(c.export("t", "f", "text/plain"));
        assert_send(c.generate_ids("t", 1));
        assert_send(c.create_folder("t", None, "n", None));
        let meta = NewDriveFile { id: None, name: "n".into(), mime_type: "text/plain".into(), parents: vec![] };
        assert_send(c.start_resumable_upload("t", &meta, 1));
        assert_send(c.upload_chunk("http://127.0.0.1:9/s", 0, Bytes::new(), 0));
        assert_send(c.upload_status("http://127.0.0.1:9/s", 0));
        assert_send(c.about("t"));
    }

    #[tokio::test]
    async fn skip_prefix_drops_leading_bytes_across_chunks() {
        let chunks: Vec<Result<Bytes, DriveError>> =
            vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"defg")), Ok(Bytes::from_static(b"hi"))];
        let out: Vec<Bytes> = skip_prefix(stream::iter(chunks), 5).try_collect().await.expect("stream");
        assert_eq!(out.concat(), b"fghi");
    }
}

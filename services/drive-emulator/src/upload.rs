//! Media uploads: `uploadType=media`, `multipart` (multipart/related) and `resumable`, on both
//! `/upload/drive/v3/files` and `/resumable/upload/drive/v3/files`.
//!
//! Bodies are streamed to disk as they arrive (hashed on the way), so memory stays flat for any size.
//! Resumable session URLs are the credential (clients send chunks without Authorization). Chunks are
//! appended to the session's file; overlap with committed bytes is skipped, a gap is refused. The file
//! exists only once the last byte is in.

use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::convert;
use crate::error::DriveError;
use crate::fields::{self, Mask};
use crate::files::{fields_mask, file_json, json_response, masked_file, parse_new_file};
use crate::oauth::authenticate;
use crate::state::{Checksums, EmulatorState, GOOGLE_APPS_PREFIX, NewFile, UploadSession};
use crate::store::{Blob, BlobWriter};
use crate::util::{self, Params};

const METADATA_LIMIT: usize = 5 * 1024 * 1024;
const UPLOAD_ID_HEADER: &str = "X-GUploader-UploadID";
/// Bytes of a multipart body held back until the end, where the closing delimiter must be.
const MULTIPART_TAIL: usize = 4096;

fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn lock(writer: &Mutex<BlobWriter>) -> MutexGuard<'_, BlobWriter> {
    writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A Workspace target converts the stored upload into its model (small: documents, sheets, decks).
fn convert_stored(
    state: &EmulatorState,
    target: &str,
    source: Option<&str>,
    blob: Blob,
) -> Result<Option<Blob>, DriveError> {
    if blob.len == 0 {
        state.store().remove(&blob);
        return Ok(None);
    }
    let raw = state.store().read(&blob).map_err(DriveError::internal)?;
    state.store().remove(&blob);
    let model = convert::import(target, source, &raw);
    let (converted, _) = state.store().put(&model).map_err(DriveError::internal)?;
    Ok(Some(converted))
}

/// An upload that has arrived: its metadata, the type it was sent as, and the stored bytes.
struct Incoming {
    meta: NewFile,
    source_mime: Option<String>,
    stored: (Blob, Checksums),
}

/// Replaces the content of file `id` (files.update with media), applying the metadata that came with it.
fn update_with_blob(
    req: &HttpRequest,
    state: &EmulatorState,
    user_id: &str,
    id: &str,
    incoming: Incoming,
    mask: Option<&Mask>,
) -> Result<HttpResponse, DriveError> {
    let Incoming { meta, source_mime, stored } = incoming;
    let target = {
        let data = state.data();
        let f = data.owned(user_id, id)?;
        if f.drive_id.is_some() && !meta.all_drives {
            return Err(DriveError::not_found(id));
        }
        if f.is_folder() {
            return Err(DriveError::bad_request("Folders have no content."));
        }
        meta.mime_type.clone().unwrap_or_else(|| f.mime_type.clone())
    };
    let (blob, checksums) = stored;
    let (blob, checksums) = if target.starts_with(GOOGLE_APPS_PREFIX) {
        (convert_stored(state, &target, source_mime.as_deref(), blob)?, None)
    } else {
        (Some(blob), Some(checksums))
    };
    let replaced = state.data().replace_content(user_id, id, &meta, blob.clone(), checksums);
    match replaced {
        Ok(old) => {
            if let Some(old) = old {
                state.store().remove(&old);
            }
        }
        Err(e) => {
            if let Some(b) = blob {
                state.store().remove(&b);
            }
            return Err(e);
        }
    }
    let data = state.data();
    let user = data.user(user_id)?;
    let file = data.owned(user_id, id)?;
    Ok(json_response(StatusCode::OK, &masked_file(mask, &file_json(file, user, &util::origin(req)))))
}

/// Creates the file for stored content (or, for an update, replaces its content) and renders the reply.
fn store_upload(
    req: &HttpRequest,
    state: &EmulatorState,
    user_id: &str,
    update: Option<&str>,
    incoming: Incoming,
    mask: Option<&Mask>,
) -> Result<HttpResponse, DriveError> {
    match update {
        Some(id) => update_with_blob(req, state, user_id, id, incoming, mask),
        None => create_with_blob(req, state, user_id, incoming.meta, incoming.source_mime, incoming.stored, mask),
    }
}

/// Creates the file for stored content and renders the reply.
fn create_with_blob(
    req: &HttpRequest,
    state: &EmulatorState,
    user_id: &str,
    mut meta: NewFile,
    source_mime: Option<String>,
    stored: (Blob, Checksums),
    mask: Option<&Mask>,
) -> Result<HttpResponse, DriveError> {
    if meta.mime_type.is_none() {
        meta.mime_type = source_mime.clone().or_else(|| Some("application/octet-stream".to_owned()));
    }
    let (blob, checksums) = stored;
    let (blob, checksums) = match meta.mime_type.as_deref() {
        Some(target) if target.starts_with(GOOGLE_APPS_PREFIX) => {
            (convert_stored(state, target, source_mime.as_deref(), blob)?, None)
        }
        _ => (Some(blob), Some(checksums)),
    };
    let mut data = state.data();
    let id = match data.insert_file(user_id, &meta, blob.clone(), checksums) {
        Ok(id) => id,
        Err(e) => {
            drop(data);
            if let Some(b) = blob {
                state.store().remove(&b);
            }
            return Err(e);
        }
    };
    let user = data.user(user_id)?;
    let file = data.owned(user_id, &id)?;
    Ok(json_response(StatusCode::OK, &masked_file(mask, &file_json(file, user, &util::origin(req)))))
}

/// `POST /upload/drive/v3/files` (and `/resumable/...`): a new upload, or a resumable chunk.
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let p = Params::from_request(&req);
    if let Some(upload_id) = p.non_empty("upload_id") {
        return chunk(&req, payload, &state, upload_id).await;
    }
    begin(&req, payload, &state, &p, None).await
}

async fn begin(
    req: &HttpRequest,
    payload: web::Payload,
    state: &EmulatorState,
    p: &Params,
    update: Option<&str>,
) -> Result<HttpResponse, DriveError> {
    match p.non_empty("uploadType") {
        Some("media") => media(req, payload, state, p, update).await,
        Some("multipart") => multipart(req, payload, state, p, update).await,
        Some("resumable") => start(req, payload, state, p, update).await,
        Some(other) => Err(DriveError::invalid("uploadType", format!("Invalid value for uploadType: {other}"))),
        None => Err(DriveError::required("uploadType", "Required parameter: uploadType")),
    }
}

/// `PATCH /upload/drive/v3/files/{id}` (and `/resumable/...`): files.update with new content.
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let p = Params::from_request(&req);
    let id = path.into_inner();
    begin(&req, payload, &state, &p, Some(&id)).await
}

/// `PUT` on a session URL: a resumable chunk or status query.
pub async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let p = Params::from_request(&req);
    match p.non_empty("upload_id") {
        Some(upload_id) => chunk(&req, payload, &state, upload_id).await,
        None => Err(DriveError::required("upload_id", "Required parameter: upload_id")),
    }
}

/// `DELETE` on a session URL cancels the upload (Google answers 499).
pub async fn cancel(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let p = Params::from_request(&req);
    let upload_id =
        p.non_empty("upload_id").ok_or_else(|| DriveError::required("upload_id", "Required parameter: upload_id"))?;
    if state.data().uploads.remove(upload_id).is_none() {
        return Err(session_not_found());
    }
    let status = StatusCode::from_u16(499).unwrap_or(StatusCode::NO_CONTENT);
    Ok(HttpResponse::build(status).finish())
}

async fn media(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &EmulatorState,
    p: &Params,
    update: Option<&str>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(req, state)?;
    let mask = fields_mask(p, fields::FILE_FIELDS)?;
    let mut writer = state.store().writer().map_err(DriveError::internal)?;
    while let Some(piece) = payload.next().await {
        let piece = piece.map_err(DriveError::payload)?;
        state.charge_upload(&user_id, piece.len() as u64)?;
        writer.write(&piece).map_err(DriveError::internal)?;
    }
    let stored = writer.commit().map_err(DriveError::internal)?;
    let mime = util::header(req, CONTENT_TYPE.as_str()).map(essence);
    let meta = NewFile { all_drives: crate::files::all_drives(p), ..NewFile::default() };
    store_upload(req, state, &user_id, update, Incoming { meta, source_mime: mime, stored }, mask.as_ref())
}

/// What the start of a multipart body says once part 1 and part 2's headers are in.
enum Head {
    Incomplete,
    /// Part 1's body, part 2's headers (None: no media part), where part 2's body starts.
    Parsed {
        meta: Bytes,
        media: Option<Part>,
        media_start: usize,
    },
}

fn parse_head(body: &Bytes, boundary: &str) -> Result<Head, String> {
    let delim = format!("--{boundary}").into_bytes();
    let line_delim = [b"\n".as_slice(), &delim].concat();
    let first = if body.starts_with(&delim) {
        0
    } else {
        match find(body, &line_delim, 0) {
            Some(i) => i + 1,
            None => return Ok(Head::Incomplete),
        }
    };
    let Some(eol) = find(body, b"\n", first + delim.len()) else {
        return Ok(Head::Incomplete);
    };
    let start = eol + 1;
    let Some(next) = find(body, &line_delim, eol) else {
        return Ok(Head::Incomplete);
    };
    let mut end = next.max(start);
    if end > start && body[end - 1] == b'\r' {
        end -= 1;
    }
    let meta = parse_part(body.slice(start..end))?.body;
    let after = next + 1 + delim.len();
    if body.len() < after + 2 {
        return Ok(Head::Incomplete);
    }
    if body[after..].starts_with(b"--") {
        return Ok(Head::Parsed { meta, media: None, media_start: body.len() });
    }
    let Some(eol) = find(body, b"\n", after) else {
        return Ok(Head::Incomplete);
    };
    let headers_start = eol + 1;
    let mut pos = headers_start;
    let media_start = loop {
        let Some(nl) = find(body, b"\n", pos) else {
            return Ok(Head::Incomplete);
        };
        let line = &body[pos..nl];
        if line.strip_suffix(b"\r").unwrap_or(line).is_empty() {
            break nl + 1;
        }
        pos = nl + 1;
    };
    let media = parse_part(body.slice(headers_start..media_start))?;
    Ok(Head::Parsed { meta, media: Some(media), media_start })
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    (0..=hay.len().checked_sub(needle.len())?).rev().find(|&i| &hay[i..i + needle.len()] == needle)
}

/// multipart/related: part 1 JSON metadata (read whole, bounded), part 2 streamed to disk. The closing
/// delimiter ends the body, so the last few KiB are held back until the end to find it.
async fn multipart(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &EmulatorState,
    p: &Params,
    update: Option<&str>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(req, state)?;
    let mask = fields_mask(p, fields::FILE_FIELDS)?;
    let boundary = util::header(req, CONTENT_TYPE.as_str())
        .and_then(boundary)
        .ok_or_else(|| DriveError::bad_request("Bad content type. Please use multipart."))?;
    let mut head = BytesMut::new();
    let mut ended = false;
    let (meta, media, media_start, head) = loop {
        let frozen = head.clone().freeze();
        match parse_head(&frozen, &boundary).map_err(DriveError::bad_request)? {
            Head::Parsed { meta, media, media_start } => break (meta, media, media_start, frozen),
            Head::Incomplete if ended => return Err(DriveError::bad_request("Multipart body ends early.")),
            Head::Incomplete if head.len() > METADATA_LIMIT => {
                return Err(DriveError::bad_request("Multipart metadata part is too large."));
            }
            Head::Incomplete => {}
        }
        match payload.next().await {
            Some(piece) => {
                let piece = piece.map_err(DriveError::payload)?;
                state.charge_upload(&user_id, piece.len() as u64)?;
                head.extend_from_slice(&piece);
            }
            None => ended = true,
        }
    };
    let mut meta = parse_new_file(&meta)?;
    meta.all_drives = crate::files::all_drives(p);
    let media_type = media.as_ref().and_then(|m| m.header("content-type")).map(essence);
    let base64 = media
        .as_ref()
        .and_then(|m| m.header("content-transfer-encoding"))
        .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
    let mut writer = state.store().writer().map_err(DriveError::internal)?;
    if media.is_some() {
        let close = format!("--{boundary}--").into_bytes();
        let hold = MULTIPART_TAIL + close.len();
        let mut pending = BytesMut::from(&head[media_start.min(head.len())..]);
        loop {
            if pending.len() > hold {
                let out = pending.split_to(pending.len() - hold);
                writer.write(&out).map_err(DriveError::internal)?;
            }
            match payload.next().await {
                Some(piece) => {
                    let piece = piece.map_err(DriveError::payload)?;
                    state.charge_upload(&user_id, piece.len() as u64)?;
                    pending.extend_from_slice(&piece);
                }
                None => break,
            }
        }
        let mut end = rfind(&pending, &close)
            .ok_or_else(|| DriveError::bad_request("Multipart body is missing its closing boundary."))?;
        // The line break before the delimiter belongs to it.
        if end > 0 && pending[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && pending[end - 1] == b'\r' {
                end -= 1;
            }
        }
        writer.write(&pending[..end]).map_err(DriveError::internal)?;
    } else {
        while let Some(piece) = payload.next().await {
            piece.map_err(DriveError::payload)?;
        }
    }
    let mut stored = writer.commit().map_err(DriveError::internal)?;
    if base64 {
        let raw = state.store().read(&stored.0).map_err(DriveError::internal)?;
        state.store().remove(&stored.0);
        let compact: Vec<u8> = raw.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| DriveError::bad_request(format!("Bad base64 part: {e}")))?;
        stored = state.store().put(&decoded).map_err(DriveError::internal)?;
    }
    store_upload(req, state, &user_id, update, Incoming { meta, source_mime: media_type, stored }, mask.as_ref())
}

async fn start(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &EmulatorState,
    p: &Params,
    update: Option<&str>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(req, state)?;
    fields_mask(p, fields::FILE_FIELDS)?;
    let body = util::read_body(&mut payload, METADATA_LIMIT).await?;
    let mut meta = parse_new_file(&body)?;
    meta.all_drives = crate::files::all_drives(p);
    let source_mime = util::header(req, "x-upload-content-type").map(essence);
    if meta.mime_type.is_none() {
        meta.mime_type = source_mime.clone();
    }
    let total = util::header(req, "x-upload-content-length")
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| DriveError::bad_request("Invalid X-Upload-Content-Length header."))
        })
        .transpose()?;
    let upload_id = format!("AHVrFx{}", util::random_token(64));
    let writer = state.store().writer().map_err(DriveError::internal)?;
    {
        let mut data = state.data();
        match update {
            // The file to update must exist (and be visible) now.
            Some(id) => {
                let f = data.owned(&user_id, id)?;
                if f.drive_id.is_some() && !meta.all_drives {
                    return Err(DriveError::not_found(id));
                }
            }
            // Fail early on a missing parent or a used id; both are checked again at the end.
            None => {
                data.check_new_file(&user_id, &meta)?;
            }
        }
        data.uploads.insert(
            upload_id.clone(),
            UploadSession {
                user_id,
                meta,
                total,
                writer: Arc::new(Mutex::new(writer)),
                fields: p.non_empty("fields").map(str::to_owned),
                completed: None,
                finalizing: false,
                source_mime,
                update_of: update.map(str::to_owned),
                started: std::time::Instant::now(),
            },
        );
    }
    let location = format!("{}/upload/drive/v3/files?uploadType=resumable&upload_id={upload_id}", util::origin(req));
    Ok(HttpResponse::Ok().insert_header((LOCATION, location)).insert_header((UPLOAD_ID_HEADER, upload_id)).finish())
}

fn session_not_found() -> DriveError {
    DriveError::new(StatusCode::NOT_FOUND, "notFound", "Upload session not found or expired.")
}

#[derive(Debug, PartialEq)]
enum ChunkRange {
    /// `bytes a-b/total` (total `*` = unknown yet); no header = the whole upload from 0.
    Data { start: u64, end: Option<u64>, total: Option<u64> },
    /// `bytes */total`: how far along are we (and, when everything is in, finish).
    Status { total: Option<u64> },
}

fn parse_content_range(header: Option<&str>) -> Result<ChunkRange, DriveError> {
    let Some(h) = header else {
        return Ok(ChunkRange::Data { start: 0, end: None, total: None });
    };
    let bad = || DriveError::bad_request(format!("Failed to parse Content-Range header: {h}"));
    let spec = h.trim().strip_prefix("bytes").ok_or_else(bad)?.trim_start();
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().map_err(|_| bad())?),
    };
    if range.trim() == "*" {
        return Ok(ChunkRange::Status { total });
    }
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse::<u64>().map_err(|_| bad())?;
    let end = b.trim().parse::<u64>().map_err(|_| bad())?;
    if end < start || total.is_some_and(|t| end >= t) {
        return Err(bad());
    }
    Ok(ChunkRange::Data { start, end: Some(end), total })
}

fn resume_incomplete(committed: u64, upload_id: &str) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::PERMANENT_REDIRECT);
    res.insert_header((UPLOAD_ID_HEADER, upload_id.to_owned()));
    if committed > 0 {
        res.insert_header(("Range", format!("bytes=0-{}", committed - 1)));
    }
    res.finish()
}

fn set_total(state: &EmulatorState, upload_id: &str, total: u64) -> Result<(), DriveError> {
    let mut data = state.data();
    let s = data.uploads.get_mut(upload_id).ok_or_else(session_not_found)?;
    match s.total {
        Some(t) if t != total => Err(DriveError::bad_request(format!(
            "The upload size {total} does not match the size declared earlier ({t})."
        ))),
        _ => {
            s.total = Some(total);
            Ok(())
        }
    }
}

async fn chunk(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &EmulatorState,
    upload_id: &str,
) -> Result<HttpResponse, DriveError> {
    let p = Params::from_request(req);
    let range = parse_content_range(util::header(req, CONTENT_RANGE.as_str()))?;
    let (user_id, writer) = {
        let mut data = state.data();
        let expired =
            data.uploads.get(upload_id).is_some_and(|s| s.started.elapsed() >= state.config().upload_session_ttl);
        if expired {
            // Dropping the session removes its partial content.
            data.uploads.remove(upload_id);
        }
        let s = data.uploads.get(upload_id).ok_or_else(session_not_found)?;
        if s.finalizing {
            return Err(DriveError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backendError",
                "The upload is being finalized; query its status again.",
            ));
        }
        (s.user_id.clone(), s.writer.clone())
    };
    match range {
        ChunkRange::Status { total } => {
            // A status query has no body; whatever came is ignored.
            while let Some(piece) = payload.next().await {
                piece.map_err(DriveError::payload)?;
            }
            if let Some(t) = total {
                set_total(state, upload_id, t)?;
            }
        }
        ChunkRange::Data { start, end, total } => {
            if let Some(t) = total {
                set_total(state, upload_id, t)?;
            }
            let committed = lock(&writer).len();
            if start > committed {
                return Err(DriveError::bad_request(format!(
                    "The chunk starts at byte {start}, but only {committed} bytes were received so far."
                )));
            }
            let limit = end.map(|e| e + 1);
            let mut pos = start;
            let mut overflow = false;
            let mut stall = state.take_stall(&user_id, crate::faults::StallKind::Upload);
            while let Some(piece) = payload.next().await {
                if let Some(pause) = stall.filter(|pause| pos - start >= pause.after_bytes) {
                    // Stop reading the body: the client's send blocks until the stall ends or it gives up.
                    pause.wait().await;
                    stall = None;
                }
                let piece = piece.map_err(DriveError::payload)?;
                let room = limit.map_or(piece.len(), |l| l.saturating_sub(pos).min(piece.len() as u64) as usize);
                if room < piece.len() {
                    overflow = true;
                }
                if room > 0 {
                    state.charge_upload(&user_id, room as u64)?;
                    append(&writer, pos, &piece[..room])?;
                }
                pos += room as u64;
            }
            if overflow || limit.is_some_and(|l| l != pos) {
                return Err(DriveError::bad_request(
                    "The number of bytes in the request does not match its Content-Range header.",
                ));
            }
            if end.is_none() {
                // No Content-Range: the body was the whole upload.
                set_total(state, upload_id, pos)?;
            }
        }
    }
    finish_or_report(req, state, upload_id, p.non_empty("fields")).await
}

/// Appends the part of `piece` (which starts at absolute offset `pos`) not committed yet.
fn append(writer: &Mutex<BlobWriter>, pos: u64, piece: &[u8]) -> Result<(), DriveError> {
    let mut w = lock(writer);
    let committed = w.len();
    if pos > committed {
        return Err(DriveError::bad_request("Chunk does not continue the upload."));
    }
    let skip = (committed - pos) as usize;
    if skip < piece.len() {
        w.write(&piece[skip..]).map_err(DriveError::internal)?;
    }
    Ok(())
}

/// 200 with the file when the upload is complete (creating it on the first time), else 308.
async fn finish_or_report(
    req: &HttpRequest,
    state: &EmulatorState,
    upload_id: &str,
    fields_param: Option<&str>,
) -> Result<HttpResponse, DriveError> {
    let origin = util::origin(req);
    let (writer, user_id, meta, fields, source_mime, update_of) = {
        let mut data = state.data();
        let s = data.uploads.get_mut(upload_id).ok_or_else(session_not_found)?;
        let fields = fields_param.map(str::to_owned).or_else(|| s.fields.clone());
        if let Some(file_id) = s.completed.clone() {
            let user_id = s.user_id.clone();
            drop(data);
            return completed_reply(state, &user_id, &file_id, fields.as_deref(), &origin);
        }
        let committed = lock(&s.writer).len();
        match s.total {
            Some(t) if committed == t => {}
            Some(t) if committed > t => {
                return Err(DriveError::bad_request(format!(
                    "Received {committed} bytes, more than the declared size {t}."
                )));
            }
            _ => return Ok(resume_incomplete(committed, upload_id)),
        }
        s.finalizing = true;
        (s.writer.clone(), s.user_id.clone(), s.meta.clone(), fields, s.source_mime.clone(), s.update_of.clone())
    };
    let committed = lock(&writer).commit();
    let (blob, checksums) = match committed {
        Ok(stored) => stored,
        Err(e) => {
            state.data().uploads.remove(upload_id);
            return Err(DriveError::internal(e));
        }
    };
    if let Some(id) = update_of {
        let mask = match fields.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(raw) => {
                let m = Mask::parse(raw).map_err(|bad| DriveError::invalid_fields(&bad))?;
                m.check(fields::FILE_FIELDS)?;
                Some(m)
            }
            None => None,
        };
        let mut meta = meta;
        // The session's Content-Type is the source, not a new type for the file.
        if meta.mime_type == source_mime {
            meta.mime_type = None;
        }
        let incoming = Incoming { meta, source_mime, stored: (blob, checksums) };
        let reply = update_with_blob(req, state, &user_id, &id, incoming, mask.as_ref());
        let mut data = state.data();
        match &reply {
            Ok(_) => {
                if let Some(s) = data.uploads.get_mut(upload_id) {
                    s.completed = Some(id.clone());
                    s.finalizing = false;
                }
            }
            Err(_) => {
                data.uploads.remove(upload_id);
            }
        }
        return reply;
    }
    let mut meta = meta;
    if meta.mime_type.is_none() {
        meta.mime_type = Some("application/octet-stream".to_owned());
    }
    let (blob, checksums) = match meta.mime_type.as_deref() {
        Some(target) if target.starts_with(GOOGLE_APPS_PREFIX) => {
            (convert_stored(state, target, source_mime.as_deref(), blob)?, None)
        }
        _ => (Some(blob), Some(checksums)),
    };
    let inserted = {
        let mut data = state.data();
        let inserted = data.insert_file(&user_id, &meta, blob.clone(), checksums);
        match &inserted {
            Ok(id) => {
                if let Some(s) = data.uploads.get_mut(upload_id) {
                    s.completed = Some(id.clone());
                    s.finalizing = false;
                }
            }
            Err(_) => {
                data.uploads.remove(upload_id);
            }
        }
        inserted
    };
    let file_id = match inserted {
        Ok(id) => id,
        Err(e) => {
            if let Some(b) = blob {
                state.store().remove(&b);
            }
            return Err(e);
        }
    };
    tracing::debug!(%file_id, "resumable upload completed");
    completed_reply(state, &user_id, &file_id, fields.as_deref(), &origin)
}

fn completed_reply(
    state: &EmulatorState,
    user_id: &str,
    file_id: &str,
    fields_raw: Option<&str>,
    origin: &str,
) -> Result<HttpResponse, DriveError> {
    let mask = match fields_raw.filter(|f| !f.trim().is_empty()) {
        Some(raw) => {
            let m = Mask::parse(raw).map_err(|bad| DriveError::invalid_fields(&bad))?;
            m.check(fields::FILE_FIELDS)?;
            Some(m)
        }
        None => None,
    };
    let data = state.data();
    let user = data.user(user_id)?;
    let file = data.owned(user_id, file_id)?;
    Ok(json_response(StatusCode::OK, &masked_file(mask.as_ref(), &file_json(file, user, origin))))
}

/// The `boundary` parameter of a multipart Content-Type (quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        (!v.is_empty()).then(|| v.to_owned())
    })
}

#[derive(Debug)]
pub struct Part {
    headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let offset = hay[i..].iter().position(|&b| b == first)?;
        i += offset;
        if hay.len() - i < needle.len() {
            return None;
        }
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Parses a whole multipart body framed with CRLF or bare LF line breaks (the streaming path uses
/// `parse_head`; this checks the framing rules on complete bodies in unit tests).
#[cfg(test)]
pub fn parse_multipart(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}").into_bytes();
    let line_delim = [b"\n".as_slice(), &delim].concat();
    // The first delimiter sits at the start of the body or right after a line break.
    let mut pos = if body.starts_with(&delim) {
        0
    } else {
        find(body, &line_delim, 0).ok_or("Multipart body has no boundary.")? + 1
    };
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        let eol = find(body, b"\n", after).ok_or("Multipart body ends early.")?;
        let start = eol + 1;
        let next = find(body, &line_delim, eol).ok_or("Multipart body is missing its closing boundary.")?;
        let mut end = next.max(start);
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
        parts.push(parse_part(body.slice(start..end))?);
        pos = next + 1;
    }
}

fn parse_part(region: Bytes) -> Result<Part, String> {
    let mut headers = Vec::new();
    let mut pos = 0;
    let body_start = loop {
        let Some(nl) = find(&region, b"\n", pos) else {
            // Headers without the blank line that ends them: an empty part.
            break region.len();
        };
        let line = &region[pos..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break nl + 1;
        }
        let line = String::from_utf8_lossy(line);
        let (k, v) = line.split_once(':').ok_or_else(|| format!("Bad multipart header: {line}"))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
        pos = nl + 1;
    };
    let mut part = Part { headers, body: region.slice(body_start.min(region.len())..) };
    if part.header("content-transfer-encoding").is_some_and(|e| e.eq_ignore_ascii_case("base64")) {
        let compact: Vec<u8> = part.body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| format!("Bad base64 part: {e}"))?;
        part.body = Bytes::from(decoded);
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/related; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(
            boundary(r#"multipart/related; boundary="===============12==""#).as_deref(),
            Some("===============12==")
        );
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn crlf_framing_with_leading_crlf() {
        let body = Bytes::from_static(
            b"\r\n--xyz\r\ncontent-type: application/json\r\n\r\n{\"name\":\"a\"}\r\n--xyz\r\ncontent-type: text/plain\r\n\r\nhello\r\n--xyz--\r\n",
        );
        let parts = parse_multipart(&body, "xyz").expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].body[..], b"{\"name\":\"a\"}");
        assert_eq!(parts[1].header("Content-Type"), Some("text/plain"));
        assert_eq!(&parts[1].body[..], b"hello");
    }

    #[test]
    fn lf_framing_and_empty_media() {
        let body = Bytes::from_static(
            b"--==b==\nContent-Type: application/json\nMIME-Version: 1.0\n\n{}\n--==b==\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\n\n--==b==--",
        );
        let parts = parse_multipart(&body, "==b==").expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].body[..], b"{}");
        assert!(parts[1].body.is_empty());
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range(Some("bytes 0-9/100")).expect("range"),
            ChunkRange::Data { start: 0, end: Some(9), total: Some(100) }
        );
        assert_eq!(
            parse_content_range(Some("bytes 10-19/*")).expect("range"),
            ChunkRange::Data { start: 10, end: Some(19), total: None }
        );
        assert_eq!(parse_content_range(Some("bytes */100")).expect("range"), ChunkRange::Status { total: Some(100) });
        assert!(parse_content_range(Some("bytes 5-1/10")).is_err());
        assert!(parse_content_range(Some("bytes 0-10/10")).is_err());
        assert!(parse_content_range(Some("items 0-1/2")).is_err());
    }
}

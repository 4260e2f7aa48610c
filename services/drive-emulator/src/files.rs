//! Drive v3 metadata endpoints: files (list, get, create, update, delete, generateIds, export),
//! about, changes and drives.

use std::cmp::Ordering;
use std::collections::HashMap;

use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::convert;
use crate::error::DriveError;
use crate::fields::{self, Mask};
use crate::oauth::authenticate;
use crate::query::{Context, Query};
use crate::state::{EmulatorState, FileEntry, NewFile, User};
use crate::util::{self, Params};

/// Downloads are streamed in pieces of this size.
const DOWNLOAD_CHUNK: usize = 64 * 1024;
const EXPORT_LIMIT: usize = 10 * 1024 * 1024;
const STORAGE_LIMIT: u64 = 15 * 1024 * 1024 * 1024;
const METADATA_LIMIT: usize = 5 * 1024 * 1024;

pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status).insert_header((CONTENT_TYPE, "application/json; charset=UTF-8")).body(body.to_string())
}

/// The `fields` parameter, checked against the resource's top-level names.
pub fn fields_mask(p: &Params, allowed: &[&str]) -> Result<Option<Mask>, DriveError> {
    let Some(raw) = p.non_empty("fields") else {
        return Ok(None);
    };
    let mask = Mask::parse(raw).map_err(|bad| DriveError::invalid_fields(&bad))?;
    mask.check(allowed)?;
    Ok(Some(mask))
}

/// A File reply: the mask when given, else Drive's default `kind,id,name,mimeType`.
pub fn masked_file(mask: Option<&Mask>, file: &Value) -> Value {
    match mask {
        Some(m) => m.apply(file),
        None => {
            let mut out = Map::new();
            for k in ["kind", "id", "name", "mimeType"] {
                if let Some(v) = file.get(k) {
                    out.insert(k.to_owned(), v.clone());
                }
            }
            Value::Object(out)
        }
    }
}

fn int_param(p: &Params, name: &'static str, default: u64, min: u64, max: u64) -> Result<u64, DriveError> {
    let Some(raw) = p.non_empty(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(v) if v >= min as i64 && v <= max as i64 => Ok(v as u64),
        Ok(_) => Err(DriveError::invalid(
            name,
            format!("Invalid value '{raw}'. Values must be within the range: [{min}, {max}]"),
        )),
        Err(_) => Err(DriveError::invalid(name, format!("Invalid value '{raw}'."))),
    }
}

/// `supportsAllDrives` (or the deprecated `supportsTeamDrives`): the caller knows about shared drives.
pub fn all_drives(p: &Params) -> bool {
    p.bool_or("supportsAllDrives", false) || p.bool_or("supportsTeamDrives", false)
}

/// The file must be visible, and a shared-drive item only to callers that said `supportsAllDrives=true`
/// (otherwise Drive answers 404, as if it did not exist).
fn check_visible(state: &EmulatorState, user_id: &str, id: &str, p: &Params) -> Result<(), DriveError> {
    let data = state.data();
    let f = data.owned(user_id, id)?;
    if f.drive_id.is_some() && !all_drives(p) {
        return Err(DriveError::not_found(id));
    }
    Ok(())
}

fn user_json(u: &User) -> Value {
    json!({
        "kind": "drive#user",
        "displayName": u.display_name,
        "photoLink": "https://lh3.googleusercontent.com/a/default-user=s64",
        "me": true,
        "permissionId": u.permission_id,
        "emailAddress": u.email,
    })
}

fn extension(name: &str) -> Option<(&str, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    let full = name.split_once('.').map_or(ext, |(_, rest)| rest);
    Some((ext, full))
}

/// The full File resource as Drive would return it for `fields=*`.
pub fn file_json(f: &FileEntry, owner: &User, origin: &str) -> Value {
    let folder = f.is_folder();
    let binary = f.is_binary();
    let modified = util::rfc3339(&f.modified);
    let capabilities = json!({
        "canAddChildren": folder,
        "canCopy": !folder,
        "canDelete": !f.is_root,
        "canDownload": true,
        "canEdit": true,
        "canListChildren": folder,
        "canModifyContent": true,
        "canReadRevisions": !folder,
        "canRemoveChildren": folder,
        "canRename": !f.is_root,
        "canShare": true,
        "canTrash": !f.is_root,
        "canUntrash": !f.is_root,
    });
    let web_view = if folder {
        format!("https://drive.google.com/drive/folders/{}", f.id)
    } else {
        format!("https://drive.google.com/file/d/{}/view?usp=drivesdk", f.id)
    };
    let mut v = json!({
        "kind": "drive#file",
        "id": f.id,
        "name": f.name,
        "mimeType": f.mime_type,
        "starred": f.starred,
        "trashed": f.trashed,
        "explicitlyTrashed": f.explicitly_trashed,
        "spaces": ["drive"],
        "version": f.version.to_string(),
        "webViewLink": web_view,
        "iconLink": format!("https://drive-thirdparty.googleusercontent.com/16/type/{}", f.mime_type),
        "hasThumbnail": false,
        "thumbnailVersion": "0",
        "viewedByMe": true,
        "viewedByMeTime": modified,
        "createdTime": util::rfc3339(&f.created),
        "modifiedTime": modified,
        "modifiedByMeTime": modified,
        "modifiedByMe": true,
    });
    let more = json!({
        "owners": [user_json(owner)],
        "lastModifyingUser": user_json(owner),
        "shared": false,
        "ownedByMe": true,
        "viewersCanCopyContent": true,
        "copyRequiresWriterPermission": false,
        "writersCanShare": true,
        "permissionIds": [owner.permission_id],
        "quotaBytesUsed": f.size().unwrap_or(0).to_string(),
        "isAppAuthorized": true,
        "inheritedPermissionsDisabled": false,
        "capabilities": capabilities,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), more) {
        obj.extend(more);
    }
    if !f.parents.is_empty() {
        v["parents"] = json!(f.parents);
    }
    if let (Some(d), Some(obj)) = (&f.drive_id, v.as_object_mut()) {
        // Shared-drive items belong to the drive, not to a user.
        obj.remove("owners");
        obj.insert("ownedByMe".to_owned(), json!(false));
        obj.insert("driveId".to_owned(), json!(d));
        obj.insert("teamDriveId".to_owned(), json!(d));
    }
    if let Some(d) = &f.description {
        v["description"] = json!(d);
    }
    let formats = convert::export_formats(&f.mime_type);
    if !formats.is_empty() {
        let links: Map<String, Value> = formats
            .iter()
            .map(|m| {
                let url = format!("{origin}/__emulator/export/{}?mimeType={}", f.id, urlencoding::encode(m));
                ((*m).to_owned(), Value::String(url))
            })
            .collect();
        v["exportLinks"] = Value::Object(links);
    }
    if binary {
        v["size"] = json!(f.size().unwrap_or(0).to_string());
        if let Some(c) = &f.checksums {
            v["md5Checksum"] = json!(c.md5);
            v["sha1Checksum"] = json!(c.sha1);
            v["sha256Checksum"] = json!(c.sha256);
        }
        v["webContentLink"] = json!(format!("https://drive.google.com/uc?id={}&export=download", f.id));
        v["originalFilename"] = json!(f.name);
        v["headRevisionId"] = json!(format!("0B{}", f.version));
        if let Some((ext, full)) = extension(&f.name) {
            v["fileExtension"] = json!(ext);
            v["fullFileExtension"] = json!(full);
        }
        if f.mime_type.starts_with("image/") {
            v["hasThumbnail"] = json!(true);
            v["thumbnailVersion"] = json!("1");
            v["thumbnailLink"] = json!(format!("https://lh3.googleusercontent.com/drive-storage/{}=s220", f.id));
        }
    }
    v
}

/// One file rendered for `user`, under the data lock.
fn render(state: &EmulatorState, user_id: &str, file_id: &str, origin: &str) -> Result<Value, DriveError> {
    let data = state.data();
    let user = data.user(user_id)?;
    let f = data.owned(user_id, file_id)?;
    Ok(file_json(f, user, origin))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum OrderKey {
    Folder,
    Name,
    NameNatural,
    Created,
    Modified,
    Quota,
    Starred,
}

fn parse_order(raw: Option<&str>) -> Result<Vec<(OrderKey, bool)>, DriveError> {
    let Some(raw) = raw else {
        return Ok(vec![(OrderKey::Name, false)]);
    };
    let mut keys = Vec::new();
    for part in raw.split(',') {
        let mut words = part.split_whitespace();
        let Some(key) = words.next() else {
            return Err(DriveError::invalid("orderBy", "Invalid Value"));
        };
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(_) => return Err(DriveError::invalid("orderBy", "Invalid Value")),
        };
        let key = match key {
            "folder" => OrderKey::Folder,
            "name" => OrderKey::Name,
            "name_natural" => OrderKey::NameNatural,
            "createdTime" => OrderKey::Created,
            "modifiedTime" | "modifiedByMeTime" | "recency" | "viewedByMeTime" | "sharedWithMeTime" => {
                OrderKey::Modified
            }
            "quotaBytesUsed" => OrderKey::Quota,
            "starred" => OrderKey::Starred,
            _ => return Err(DriveError::invalid("orderBy", "Invalid Value")),
        };
        if words.next().is_some() {
            return Err(DriveError::invalid("orderBy", "Invalid Value"));
        }
        keys.push((key, desc));
    }
    Ok(keys)
}

/// Compares digit runs by value, the rest case-insensitively.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = a.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    a.next();
                }
                let mut nb = String::new();
                while let Some(c) = b.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    b.next();
                }
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let ord = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            (Some(x), Some(y)) => {
                let ord = x.to_lowercase().cmp(y.to_lowercase());
                if ord != Ordering::Equal {
                    return ord;
                }
                a.next();
                b.next();
            }
        }
    }
}

fn compare(a: &FileEntry, b: &FileEntry, keys: &[(OrderKey, bool)]) -> Ordering {
    for (key, desc) in keys {
        let ord = match key {
            // Folders first when ascending.
            OrderKey::Folder => b.is_folder().cmp(&a.is_folder()),
            OrderKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.name.cmp(&b.name)),
            OrderKey::NameNatural => natural_cmp(&a.name, &b.name),
            OrderKey::Created => a.created.cmp(&b.created),
            OrderKey::Modified => a.modified.cmp(&b.modified),
            OrderKey::Quota => a.size().unwrap_or(0).cmp(&b.size().unwrap_or(0)),
            OrderKey::Starred => b.starred.cmp(&a.starred),
        };
        let ord = if *desc { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.id.cmp(&b.id)
}

fn encode_page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_page_token(token: Option<&str>) -> Result<usize, DriveError> {
    let Some(token) = token else {
        return Ok(0);
    };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| DriveError::invalid("pageToken", "Invalid Value"))
}

/// `GET /drive/v3/files`
pub async fn list(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let origin = util::origin(&req);
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let page_size = int_param(&p, "pageSize", 100, 1, 1000)? as usize;
    let mask = fields_mask(&p, fields::FILE_LIST_FIELDS)?;
    if let Some(m) = &mask {
        m.check_child("files", fields::FILE_FIELDS)?;
    }
    let order = parse_order(p.non_empty("orderBy"))?;
    let offset = decode_page_token(p.non_empty("pageToken"))?;
    let query = p.non_empty("q").map(Query::parse).transpose()?;
    let corpus = corpus(&p)?;

    let (page, next) = {
        let data = state.data();
        let user = data.user(&user_id)?;
        if let Corpus::Drive(d) = &corpus
            && !data.is_member(&user_id, d)
        {
            return Err(shared_drive_not_found(d));
        }
        let cx = Context { root_id: &user.root_id, email: &user.email };
        let mut files: Vec<&FileEntry> = data
            .files
            .values()
            .filter(|f| !f.is_root)
            .filter(|f| match &corpus {
                Corpus::User => f.drive_id.is_none() && f.owner_id == user_id,
                Corpus::Drive(d) => f.drive_id.as_deref() == Some(d.as_str()),
                Corpus::AllDrives => data.can_see(&user_id, f),
            })
            .filter(|f| query.as_ref().is_none_or(|q| q.matches(f, &cx)))
            .collect();
        files.sort_by(|a, b| compare(a, b, &order));
        let page: Vec<Value> = files.iter().skip(offset).take(page_size).map(|f| file_json(f, user, &origin)).collect();
        let next = (offset + page_size < files.len()).then(|| encode_page_token(offset + page_size));
        (page, next)
    };

    let mut body = json!({
        "kind": "drive#fileList",
        "incompleteSearch": false,
    });
    if let Some(n) = next {
        body["nextPageToken"] = json!(n);
    }
    let body = match &mask {
        Some(m) => {
            body["files"] = Value::Array(page);
            m.apply(&body)
        }
        None => {
            body["files"] = page.iter().map(|f| masked_file(None, f)).collect();
            body
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// Which files a files.list searches (`corpora`, `driveId`).
enum Corpus {
    /// My Drive (`user`, the default; `domain` is treated the same).
    User,
    /// One shared drive.
    Drive(String),
    /// My Drive and every shared drive the user belongs to.
    AllDrives,
}

fn shared_drive_not_found(id: &str) -> DriveError {
    DriveError::new(StatusCode::NOT_FOUND, "notFound", format!("Shared drive not found: {id}"))
        .at("driveId", "parameter")
}

fn corpus(p: &Params) -> Result<Corpus, DriveError> {
    let include = p.bool_or("includeItemsFromAllDrives", false) || p.bool_or("includeTeamDriveItems", false);
    let corpus = match (p.non_empty("corpora"), p.non_empty("driveId")) {
        (Some("drive") | None, Some(d)) => Corpus::Drive(d.to_owned()),
        (Some("drive"), None) => {
            return Err(DriveError::required("driveId", "The driveId parameter is required when corpora is drive."));
        }
        (Some("allDrives"), None) => Corpus::AllDrives,
        (Some("user" | "domain") | None, None) => Corpus::User,
        (Some("user" | "domain" | "allDrives"), Some(_)) => {
            return Err(DriveError::invalid("corpora", "The driveId parameter can only be used with corpora=drive."));
        }
        (Some(other), _) => return Err(DriveError::invalid("corpora", format!("Invalid Value: {other}"))),
    };
    if !(matches!(corpus, Corpus::User) || (include && all_drives(p))) {
        return Err(DriveError::invalid(
            "includeItemsFromAllDrives",
            "includeItemsFromAllDrives and supportsAllDrives must be true to search shared drives.",
        ));
    }
    Ok(corpus)
}

enum RangeRequest {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    // Several ranges: serving the whole body is allowed (RFC 9110 14.2).
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if suffix == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Part(len.saturating_sub(suffix), len - 1);
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeRequest::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeRequest::Whole,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(start, end.min(len - 1))
}

/// A body streamed out of `content` in fixed-size pieces, with a Content-Length.
///
/// With `cut`, the stream fails after that many bytes, so the server closes the connection mid-body
/// (the client sees fewer bytes than Content-Length promised).
pub fn stream_body(
    content: Bytes,
    cut: Option<u64>,
) -> SizedStream<impl futures::Stream<Item = Result<Bytes, std::io::Error>>> {
    let len = content.len();
    let stop = cut.map_or(len, |c| usize::try_from(c).unwrap_or(usize::MAX).min(len));
    let mut pieces: Vec<Result<Bytes, std::io::Error>> = (0..stop)
        .step_by(DOWNLOAD_CHUNK)
        .map(|start| Ok(content.slice(start..(start + DOWNLOAD_CHUNK).min(stop))))
        .collect();
    if cut.is_some() && stop < len {
        pieces.push(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "download cut (fault injection)")));
    }
    SizedStream::new(len as u64, futures::stream::iter(pieces))
}

/// A body read from a stored blob: `count` bytes from `start`, cut after `cut` bytes if asked, and silent for a
/// while after `stall.after_bytes` if asked.
/// What to do to one download's body (fault injection).
pub struct BodyFaults {
    /// End the body with an error after this many bytes.
    pub cut: Option<u64>,
    pub stall: Option<crate::faults::Stall>,
    /// Flip the first byte: damaged on the way, length unchanged.
    pub corrupt: bool,
}

pub async fn blob_body(
    path: Option<std::path::PathBuf>,
    start: u64,
    count: u64,
    BodyFaults { cut, stall, corrupt }: BodyFaults,
) -> Result<SizedStream<BoxStream<'static, Result<Bytes, std::io::Error>>>, DriveError> {
    let stop = cut.map_or(count, |c| c.min(count));
    let mut stream: BoxStream<'static, Result<Bytes, std::io::Error>> = match path {
        Some(p) if stop > 0 => {
            let pause = stall.filter(|stall| stall.after_bytes < stop);
            let first = pause.map_or(stop, |stall| stall.after_bytes);
            let mut file = tokio::fs::File::open(&p).await.map_err(DriveError::internal)?;
            file.seek(std::io::SeekFrom::Start(start)).await.map_err(DriveError::internal)?;
            let head = tokio_util::io::ReaderStream::with_capacity(file.take(first), DOWNLOAD_CHUNK);
            match pause {
                None => head.boxed(),
                Some(stall) => {
                    // The rest is read from a second handle once the stall is over.
                    let rest = futures::stream::once(async move {
                        stall.wait().await;
                        let mut file = tokio::fs::File::open(&p).await?;
                        file.seek(std::io::SeekFrom::Start(start + first)).await?;
                        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
                            file.take(stop - first),
                            DOWNLOAD_CHUNK,
                        ))
                    })
                    .try_flatten();
                    head.chain(rest).boxed()
                }
            }
        }
        _ => futures::stream::empty().boxed(),
    };
    if stop < count {
        let cut_error = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "download cut (fault injection)");
        stream = stream.chain(futures::stream::once(async move { Err(cut_error) })).boxed();
    }
    if corrupt {
        let mut first = true;
        stream = stream
            .map_ok(move |chunk| {
                if !std::mem::take(&mut first) || chunk.is_empty() {
                    return chunk;
                }
                let mut damaged = chunk.to_vec();
                damaged[0] ^= 0xff;
                Bytes::from(damaged)
            })
            .boxed();
    }
    Ok(SizedStream::new(count, stream))
}

async fn download(
    req: &HttpRequest,
    state: &EmulatorState,
    user_id: &str,
    id: &str,
) -> Result<HttpResponse, DriveError> {
    let (blob, mime) = {
        let data = state.data();
        let f = data.owned(user_id, id)?;
        if !f.is_binary() {
            return Err(DriveError::new(
                StatusCode::FORBIDDEN,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
            )
            .at("alt", "parameter"));
        }
        if f.abusive && !Params::from_request(req).bool_or("acknowledgeAbuse", false) {
            return Err(DriveError::new(
                StatusCode::FORBIDDEN,
                "cannotDownloadAbusiveFile",
                "This file has been identified as malware or spam and cannot be downloaded.",
            ));
        }
        (f.content.clone(), f.mime_type.clone())
    };
    let len = blob.as_ref().map_or(0, |b| b.len);
    let path = blob.map(|b| state.store().path(&b.key));
    let range = parse_range(util::header(req, RANGE.as_str()), len);
    let served = match range {
        RangeRequest::Whole => len,
        RangeRequest::Part(start, end) => end - start + 1,
        RangeRequest::Unsatisfiable => 0,
    };
    state.charge_download(user_id, served)?;
    let cut = if served > 0 { state.take_download_cut(user_id) } else { None };
    let stall = if served > 0 { state.take_stall(user_id, crate::faults::StallKind::Download) } else { None };
    let corrupt = served > 0 && state.take_download_corruption(user_id);
    let faults = BodyFaults { cut, stall, corrupt };
    let body = |start, count| blob_body(path, start, count, faults);
    match range {
        RangeRequest::Whole => Ok(HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, mime))
            .insert_header((ACCEPT_RANGES, "bytes"))
            .body(body(0, len).await?)),
        RangeRequest::Part(start, end) => Ok(HttpResponse::PartialContent()
            .insert_header((CONTENT_TYPE, mime))
            .insert_header((ACCEPT_RANGES, "bytes"))
            .insert_header((CONTENT_RANGE, format!("bytes {start}-{end}/{len}")))
            .body(body(start, served).await?)),
        RangeRequest::Unsatisfiable => Err(DriveError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "requestedRangeNotSatisfiable",
            "Request range not satisfiable",
        )
        .at("Range", "header")
        .with_header(CONTENT_RANGE, format!("bytes */{len}"))),
    }
}

/// `GET /drive/v3/files/{id}`: metadata, or bytes with `alt=media`.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let id = path.into_inner();
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    check_visible(&state, &user_id, &id, &p)?;
    if p.get("alt") == Some("media") {
        return download(&req, &state, &user_id, &id).await;
    }
    let mask = fields_mask(&p, fields::FILE_FIELDS)?;
    let file = render(&state, &user_id, &id, &util::origin(&req))?;
    Ok(json_response(StatusCode::OK, &masked_file(mask.as_ref(), &file)))
}

fn parse_error() -> DriveError {
    DriveError::new(StatusCode::BAD_REQUEST, "parseError", "Parse Error")
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, DriveError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(parse_error()),
    }
}

fn opt_string(obj: &Map<String, Value>, key: &'static str) -> Result<Option<String>, DriveError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DriveError::invalid(key, format!("Invalid value for {key}.")).at(key, "other")),
    }
}

fn opt_time(obj: &Map<String, Value>, key: &'static str) -> Result<Option<DateTime<Utc>>, DriveError> {
    opt_string(obj, key)?
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| DriveError::invalid(key, format!("Invalid value for {key}: {s}")))
        })
        .transpose()
}

fn opt_bool(obj: &Map<String, Value>, key: &'static str) -> Result<Option<bool>, DriveError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(DriveError::invalid(key, format!("Invalid value for {key}."))),
    }
}

/// File metadata of a create request (JSON body or multipart part).
pub fn parse_new_file(body: &[u8]) -> Result<NewFile, DriveError> {
    let obj = json_object(body)?;
    let id = opt_string(&obj, "id")?;
    if let Some(id) = &id
        && !util::is_usable_id(id)
    {
        return Err(DriveError::bad_request("The provided file ID is not usable.").at("file.id", "other"));
    }
    let parents = match obj.get("parents") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DriveError::invalid("parents", "Invalid value for parents."))?,
        Some(_) => return Err(DriveError::invalid("parents", "Invalid value for parents.")),
    };
    if parents.len() > 1 {
        return Err(DriveError::new(
            StatusCode::FORBIDDEN,
            "cannotAddParent",
            "Increasing the number of parents is not allowed.",
        ));
    }
    Ok(NewFile {
        id,
        name: opt_string(&obj, "name")?,
        mime_type: opt_string(&obj, "mimeType")?,
        parents,
        description: opt_string(&obj, "description")?,
        starred: opt_bool(&obj, "starred")?.unwrap_or(false),
        created: opt_time(&obj, "createdTime")?,
        modified: opt_time(&obj, "modifiedTime")?,
        all_drives: false,
    })
}

/// `POST /drive/v3/files`: metadata-only create (folders, empty files, Workspace placeholders).
pub async fn create(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let mask = fields_mask(&p, fields::FILE_FIELDS)?;
    let body = util::read_body(&mut payload, METADATA_LIMIT).await?;
    let mut meta = parse_new_file(&body)?;
    meta.all_drives = all_drives(&p);
    let id = state.data().insert_file(&user_id, &meta, None, None)?;
    let file = render(&state, &user_id, &id, &util::origin(&req))?;
    Ok(json_response(StatusCode::OK, &masked_file(mask.as_ref(), &file)))
}

fn id_list(raw: Option<&str>) -> Vec<String> {
    raw.map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

/// `PATCH /drive/v3/files/{id}`: rename, move (addParents/removeParents), trash, star.
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let id = path.into_inner();
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let mask = fields_mask(&p, fields::FILE_FIELDS)?;
    let body = util::read_body(&mut payload, METADATA_LIMIT).await?;
    let obj = json_object(&body)?;
    if obj.contains_key("parents") {
        return Err(DriveError::new(
            StatusCode::FORBIDDEN,
            "fieldNotWritable",
            "The parents field is not directly writable in update requests. Use the addParents and removeParents parameters instead.",
        ));
    }
    let name = opt_string(&obj, "name")?;
    let mime_type = opt_string(&obj, "mimeType")?;
    let description = opt_string(&obj, "description")?;
    let starred = opt_bool(&obj, "starred")?;
    let trashed = opt_bool(&obj, "trashed")?;
    let modified = opt_time(&obj, "modifiedTime")?;
    let add = id_list(p.non_empty("addParents"));
    let remove = id_list(p.non_empty("removeParents"));
    check_visible(&state, &user_id, &id, &p)?;

    {
        let mut data = state.data();
        let file_id = data.owned(&user_id, &id)?.id.clone();
        let subtree = data.subtree(&file_id);
        let mut added = Vec::new();
        for a in &add {
            let parent = data.owned(&user_id, a)?;
            if !parent.is_folder() || subtree.contains(&parent.id) {
                return Err(DriveError::bad_request(format!("Cannot move the file into {a}.")));
            }
            added.push(parent.id.clone());
        }
        let removed: Vec<String> = remove.iter().map(|r| data.resolve(&user_id, r)).collect();
        let now = Utc::now();
        let f = data.owned_mut(&user_id, &id)?;
        let mut parents: Vec<String> = f.parents.iter().filter(|p| !removed.contains(p)).cloned().collect();
        for a in added {
            if !parents.contains(&a) {
                parents.push(a);
            }
        }
        if parents.len() > 1 {
            return Err(DriveError::new(
                StatusCode::FORBIDDEN,
                "cannotAddParent",
                "Increasing the number of parents is not allowed.",
            ));
        }
        f.parents = parents;
        if let Some(n) = name {
            f.name = n;
        }
        if let Some(m) = mime_type {
            f.mime_type = m;
        }
        if let Some(d) = description {
            f.description = Some(d);
        }
        if let Some(s) = starred {
            f.starred = s;
        }
        let trash_change = trashed.filter(|t| *t != f.trashed);
        if let Some(t) = trashed {
            f.trashed = t;
            f.explicitly_trashed = t;
        }
        f.version += 1;
        f.modified = modified.unwrap_or(now);
        data.record_change(&user_id, &file_id);
        // Trashing a folder trashes what is inside it (implicitly); restoring brings those back.
        if let Some(t) = trash_change {
            for child in subtree.iter().skip(1) {
                if let Some(c) = data.files.get_mut(child) {
                    if t && !c.trashed {
                        c.trashed = true;
                        c.explicitly_trashed = false;
                    } else if !t && !c.explicitly_trashed {
                        c.trashed = false;
                    } else {
                        continue;
                    }
                    c.version += 1;
                    data.record_change(&user_id, child);
                }
            }
        }
    }
    let file = render(&state, &user_id, &id, &util::origin(&req))?;
    Ok(json_response(StatusCode::OK, &masked_file(mask.as_ref(), &file)))
}

/// `DELETE /drive/v3/files/{id}`: permanent, folders take their descendants with them.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let id = path.into_inner();
    let user_id = authenticate(&req, &state)?;
    check_visible(&state, &user_id, &id, &Params::from_request(&req))?;
    let mut data = state.data();
    let f = data.owned(&user_id, &id)?;
    if f.is_root {
        return Err(DriveError::new(
            StatusCode::FORBIDDEN,
            "insufficientFilePermissions",
            "The user does not have sufficient permissions for this file.",
        ));
    }
    let file_id = f.id.clone();
    let mut blobs = Vec::new();
    for gone in data.subtree(&file_id) {
        // Recorded first, so the change keeps the shared drive the file was in.
        data.record_change(&user_id, &gone);
        if let Some(f) = data.files.remove(&gone) {
            blobs.extend(f.content);
        }
    }
    drop(data);
    for blob in blobs {
        state.store().remove(&blob);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /drive/v3/files/generateIds`
pub async fn generate_ids(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let count = int_param(&p, "count", 10, 1, 1000)? as usize;
    let space = p.non_empty("space").unwrap_or("drive");
    if space != "drive" && space != "appDataFolder" {
        return Err(DriveError::invalid("space", format!("Invalid Value: {space}")));
    }
    let mask = fields_mask(&p, fields::GENERATED_IDS_FIELDS)?;
    let ids: Vec<String> = {
        let data = state.data();
        let mut ids = Vec::with_capacity(count);
        while ids.len() < count {
            let id = util::drive_id();
            if !data.files.contains_key(&id) && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    };
    let body = json!({"kind": "drive#generatedIds", "space": space, "ids": ids});
    let body = mask.map_or(body.clone(), |m| m.apply(&body));
    Ok(json_response(StatusCode::OK, &body))
}

/// Renders an export for the user, checking what Drive checks (`capped`: the 10 MB limit of files.export).
fn render_export(
    state: &EmulatorState,
    user_id: &str,
    id: &str,
    target: &str,
    capped: bool,
) -> Result<Vec<u8>, DriveError> {
    let (mime, name, content) = {
        let data = state.data();
        let f = data.owned(user_id, id)?;
        if convert::export_formats(&f.mime_type).is_empty() {
            return Err(DriveError::new(
                StatusCode::FORBIDDEN,
                "fileNotExportable",
                "Export only supports Docs Editors files.",
            ));
        }
        (f.mime_type.clone(), f.name.clone(), f.content.clone())
    };
    let content = match content {
        Some(blob) => state.store().read(&blob).map_err(DriveError::internal)?,
        None => Vec::new(),
    };
    let out = match convert::export(&mime, &name, &content, target) {
        Ok(out) => out,
        Err(convert::ExportError::Unsupported) => {
            return Err(
                DriveError::bad_request("The requested conversion is not supported.").at("convertTo", "parameter")
            );
        }
        Err(e @ convert::ExportError::Build(_)) => {
            return Err(DriveError::new(StatusCode::INTERNAL_SERVER_ERROR, "internalError", e.to_string()));
        }
    };
    if capped && out.len() > EXPORT_LIMIT {
        return Err(DriveError::new(
            StatusCode::FORBIDDEN,
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
        ));
    }
    state.charge_download(user_id, out.len() as u64)?;
    Ok(out)
}

fn export_target(p: &Params) -> Result<String, DriveError> {
    Ok(p.non_empty("mimeType")
        .ok_or_else(|| DriveError::required("mimeType", "Required parameter: mimeType"))?
        .to_owned())
}

/// `GET /drive/v3/files/{id}/export`: a real document of the requested type, at most 10 MB.
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let id = path.into_inner();
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    check_visible(&state, &user_id, &id, &p)?;
    let target = export_target(&p)?;
    let out = render_export(&state, &user_id, &id, &target, true)?;
    Ok(HttpResponse::Ok().insert_header((CONTENT_TYPE, target)).body(stream_body(Bytes::from(out), None)))
}

/// `GET /__emulator/export/{id}?mimeType=...`: what `exportLinks` point at; the same documents without the
/// 10 MB cap (Drive's export links are the documented way past it). Needs the user's access token.
pub async fn export_link(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let id = path.into_inner();
    let user_id = authenticate(&req, &state)?;
    let target = export_target(&Params::from_request(&req))?;
    let out = render_export(&state, &user_id, &id, &target, false)?;
    let file_name = format!("export.{}", convert::format_name(&target));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, target))
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{file_name}\"")))
        .body(stream_body(Bytes::from(out), None)))
}

/// `GET /drive/v3/about` (`fields` is required, as on Drive).
pub async fn about(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let mask = fields_mask(&p, fields::ABOUT_FIELDS)?
        .ok_or_else(|| DriveError::required("fields", "The 'fields' parameter is required for this method."))?;
    let body = {
        let data = state.data();
        let user = data.user(&user_id)?;
        let (usage, trash) = data.usage(&user_id);
        json!({
            "kind": "drive#about",
            "user": user_json(user),
            "storageQuota": {
                "limit": STORAGE_LIMIT.to_string(),
                "usage": usage.to_string(),
                "usageInDrive": usage.to_string(),
                "usageInDriveTrash": trash.to_string(),
            },
            "maxUploadSize": "5242880000000",
            "appInstalled": false,
            "canCreateDrives": true,
            "canCreateTeamDrives": true,
            "importFormats": convert::import_formats(),
            "exportFormats": convert::all_export_formats(),
            "maxImportSizes": {
                convert::DOCUMENT: "10485760",
                convert::SPREADSHEET: "104857600",
                convert::PRESENTATION: "104857600",
            },
            "folderColorPalette": [],
            "driveThemes": [],
            "teamDriveThemes": [],
        })
    };
    Ok(json_response(StatusCode::OK, &mask.apply(&body)))
}

/// `GET /drive/v3/changes/startPageToken`
pub async fn start_page_token(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let data = state.data();
    // A shared drive's corpus: as on Drive, only for its members and only with supportsAllDrives.
    if let Some(drive) = p.non_empty("driveId") {
        if !all_drives(&p) {
            return Err(DriveError::invalid("supportsAllDrives", "supportsAllDrives must be true with driveId."));
        }
        if !data.is_member(&user_id, drive) {
            return Err(shared_drive_not_found(drive));
        }
    }
    // Positions are one sequence for every corpus; a corpus's feed filters by what belongs to it.
    let next = data.change_seq + 1;
    Ok(json_response(StatusCode::OK, &json!({"kind": "drive#startPageToken", "startPageToken": next.to_string()})))
}

/// `GET /drive/v3/changes`: the latest change per file since `pageToken`.
pub async fn changes(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let origin = util::origin(&req);
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let token_raw =
        p.non_empty("pageToken").ok_or_else(|| DriveError::required("pageToken", "Required parameter: pageToken"))?;
    let token: u64 = token_raw.parse().map_err(|_| DriveError::invalid("pageToken", "Invalid Value"))?;
    let page_size = int_param(&p, "pageSize", 100, 1, 1000)? as usize;
    let include_removed = p.bool_or("includeRemoved", true);
    let mask = fields_mask(&p, fields::CHANGE_LIST_FIELDS)?;
    if let Some(m) = &mask {
        m.check_child("changes", fields::CHANGE_FIELDS)?;
    }

    let body = {
        let data = state.data();
        let user = data.user(&user_id)?;
        let drive = p.non_empty("driveId");
        let include = all_drives(&p)
            && (p.bool_or("includeItemsFromAllDrives", false) || p.bool_or("includeTeamDriveItems", false));
        if let Some(d) = drive {
            if !include {
                return Err(DriveError::invalid(
                    "includeItemsFromAllDrives",
                    "includeItemsFromAllDrives and supportsAllDrives must be true with driveId.",
                ));
            }
            if !data.is_member(&user_id, d) {
                return Err(shared_drive_not_found(d));
            }
        }
        let visible = |c: &crate::state::Change| match (&c.drive_id, drive) {
            (Some(cd), Some(d)) => cd == d,
            (None, Some(_)) => false,
            // The user's corpus: changes to what they can see now (whoever made them), and their own removals.
            (None, None) => data.files.get(&c.file_id).map_or(c.user_id == user_id, |f| data.can_see(&user_id, f)),
            (Some(cd), None) => include && data.is_member(&user_id, cd),
        };
        let mut latest: HashMap<&str, &crate::state::Change> = HashMap::new();
        for c in data.changes.iter().filter(|c| c.seq >= token && visible(c)) {
            latest.insert(c.file_id.as_str(), c);
        }
        let mut list: Vec<&crate::state::Change> = latest.into_values().collect();
        list.sort_by_key(|c| c.seq);
        let mut out = Vec::new();
        let mut next = None;
        for c in list {
            if out.len() == page_size {
                next = Some(c.seq);
                break;
            }
            let file = data.files.get(&c.file_id).filter(|f| data.can_see(&user_id, f));
            if file.is_none() && !include_removed {
                continue;
            }
            let mut change = json!({
                "kind": "drive#change",
                "changeType": "file",
                "type": "file",
                "time": util::rfc3339(&c.time),
                "removed": file.is_none(),
                "fileId": c.file_id,
            });
            if let Some(d) = &c.drive_id {
                change["driveId"] = json!(d);
            }
            if let Some(f) = file {
                let rendered = file_json(f, user, &origin);
                change["file"] = match &mask {
                    Some(_) => rendered,
                    None => masked_file(None, &rendered),
                };
            }
            out.push(change);
        }
        let mut body = json!({"kind": "drive#changeList", "changes": out});
        match next {
            Some(n) => body["nextPageToken"] = json!(n.to_string()),
            None => body["newStartPageToken"] = json!((data.change_seq + 1).to_string()),
        }
        body
    };
    let body = mask.map_or(body.clone(), |m| m.apply(&body));
    Ok(json_response(StatusCode::OK, &body))
}

fn drive_json(d: &crate::state::SharedDrive) -> Value {
    json!({
        "kind": "drive#drive",
        "id": d.id,
        "name": d.name,
        "createdTime": util::rfc3339(&d.created),
        "hidden": d.hidden,
        "colorRgb": "#4986e7",
        "themeId": "abacus",
        "backgroundImageLink": "https://ssl.gstatic.com/team_drive_themes/abacus_background.jpg",
        "capabilities": {
            "canAddChildren": true,
            "canComment": true,
            "canCopy": true,
            "canDeleteDrive": true,
            "canDownload": true,
            "canEdit": true,
            "canListChildren": true,
            "canManageMembers": true,
            "canRename": true,
            "canRenameDrive": true,
            "canShare": true,
            "canTrashChildren": true,
        },
        "restrictions": {
            "adminManagedRestrictions": false,
            "copyRequiresWriterPermission": false,
            "domainUsersOnly": false,
            "driveMembersOnly": false,
        },
    })
}

/// The drives.list `q` subset: `name = '...'`, `name contains '...'`, `hidden = true|false`, joined by `and`.
fn drive_matches(q: &str, d: &crate::state::SharedDrive) -> Result<bool, DriveError> {
    let bad = || DriveError::invalid("q", "Invalid Value");
    for term in q.split(" and ") {
        let term = term.trim();
        let unquote = |v: &str| -> Result<String, DriveError> {
            let v = v.trim();
            v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).map(|v| v.replace("\\'", "'")).ok_or_else(bad)
        };
        let ok = if let Some(v) = term.strip_prefix("name contains ") {
            d.name.to_lowercase().contains(&unquote(v)?.to_lowercase())
        } else if let Some(v) = term.strip_prefix("name = ") {
            d.name == unquote(v)?
        } else if let Some(v) = term.strip_prefix("name != ") {
            d.name != unquote(v)?
        } else if let Some(v) = term.strip_prefix("hidden = ") {
            d.hidden == v.trim().parse::<bool>().map_err(|_| bad())?
        } else {
            return Err(bad());
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /drive/v3/drives`: the shared drives the user belongs to.
pub async fn drives(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let page_size = int_param(&p, "pageSize", 10, 1, 100)? as usize;
    let offset = decode_page_token(p.non_empty("pageToken"))?;
    let mask = fields_mask(&p, fields::DRIVE_LIST_FIELDS)?;
    let mut list = Vec::new();
    {
        let data = state.data();
        let mut mine: Vec<&crate::state::SharedDrive> =
            data.drives.values().filter(|d| d.members.iter().any(|m| m == &user_id)).collect();
        mine.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        for d in mine {
            let keep = match p.non_empty("q") {
                Some(q) => drive_matches(q, d)?,
                None => !d.hidden,
            };
            if keep {
                list.push(drive_json(d));
            }
        }
    }
    let total = list.len();
    let page: Vec<Value> = list.into_iter().skip(offset).take(page_size).collect();
    let mut body = json!({"kind": "drive#driveList", "drives": page});
    if offset + page_size < total {
        body["nextPageToken"] = json!(encode_page_token(offset + page_size));
    }
    let body = mask.map_or(body.clone(), |m| m.apply(&body));
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /drive/v3/drives/{id}`
pub async fn drive_get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let id = path.into_inner();
    let data = state.data();
    match data.drives.get(&id) {
        Some(d) if data.is_member(&user_id, &id) => Ok(json_response(StatusCode::OK, &drive_json(d))),
        _ => Err(shared_drive_not_found(&id)),
    }
}

/// `POST /drive/v3/drives?requestId=...`: a new shared drive with the caller as its organizer.
pub async fn drive_create(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let p = Params::from_request(&req);
    let request_id = p
        .non_empty("requestId")
        .ok_or_else(|| DriveError::required("requestId", "Required parameter: requestId"))?
        .to_owned();
    let body = util::read_body(&mut payload, METADATA_LIMIT).await?;
    let obj = json_object(&body)?;
    let name = opt_string(&obj, "name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| DriveError::required("name", "A shared drive name is required.").at("drive.name", "other"))?;
    let mut data = state.data();
    if data.drive_requests.contains_key(&request_id) {
        return Err(DriveError::new(
            StatusCode::CONFLICT,
            "duplicate",
            "A shared drive with this request ID already exists.",
        ));
    }
    let id = data.create_shared_drive(&name, vec![user_id]);
    data.drive_requests.insert(request_id, id.clone());
    let body = data.drives.get(&id).map(drive_json).unwrap_or(Value::Null);
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(matches!(parse_range(Some("bytes=0-9"), 100), RangeRequest::Part(0, 9)));
        assert!(matches!(parse_range(Some("bytes=90-"), 100), RangeRequest::Part(90, 99)));
        assert!(matches!(parse_range(Some("bytes=-10"), 100), RangeRequest::Part(90, 99)));
        assert!(matches!(parse_range(Some("bytes=50-500"), 100), RangeRequest::Part(50, 99)));
        assert!(matches!(parse_range(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable));
        assert!(matches!(parse_range(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable));
        assert!(matches!(parse_range(Some("bytes=5-1"), 100), RangeRequest::Whole));
        assert!(matches!(parse_range(None, 100), RangeRequest::Whole));
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(decode_page_token(Some(&encode_page_token(42))).expect("token"), 42);
        assert!(decode_page_token(Some("garbage!")).is_err());
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("file2", "file10"), Ordering::Less);
        assert_eq!(natural_cmp("b", "A"), Ordering::Greater);
    }

    #[test]
    fn order_by_parses() {
        assert_eq!(
            parse_order(Some("folder,name desc")).expect("order"),
            vec![(OrderKey::Folder, false), (OrderKey::Name, true)]
        );
        assert!(parse_order(Some("size")).is_err());
    }
}

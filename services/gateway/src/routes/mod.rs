//! The `/api/v2` routes.

pub mod connections;
pub mod documents;
pub mod files;
pub mod folders;
pub mod job_control;
pub mod job_dto;
pub mod jobs;
pub mod libraries;
pub mod oauth;
pub mod picker;

use actix_web::web;
use serde::Serialize;

/// Timestamps as the API documents them: RFC 3339, UTC, second precision, `Z`.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v2")
            .configure(oauth::configure)
            .configure(connections::configure)
            .configure(picker::configure)
            .configure(jobs::configure)
            .configure(job_control::configure)
            .configure(files::configure)
            .configure(folders::configure)
            .configure(documents::configure_me),
    );
}

/// A path segment that is not a valid id of its kind names nothing: 404, exactly like an unknown id. (Ids in
/// request bodies and query strings that do not parse stay 400 VALIDATION_ERROR.)
pub fn path_id<T, E>(parsed: Result<T, E>, what: &str) -> crate::error::ApiResult<T> {
    parsed.map_err(|_| crate::error::ApiError::not_found(what))
}

/// Text the store can keep: Postgres text holds anything but NUL, so a value with U+0000 is a 400 naming the
/// field (the document's patterns say `[^\u0000]`), never a database error.
pub fn storable(field: &str, value: &str) -> crate::error::ApiResult<()> {
    if value.contains('\0') {
        return Err(crate::error::ApiError::field(
            field,
            format!("`{field}` must not contain NUL (U+0000) characters"),
        ));
    }
    Ok(())
}

/// Blank by the document's rule: nothing but ASCII space, tab, LF, CR and form feed (the patterns'
/// `[^\u0000 \t\n\f\r]` asks for one other character).
pub fn is_blank(value: &str) -> bool {
    value.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
}

/// The body of endpoints that only confirm (delete, disconnect).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuccessResponse {
    /// Always true (failures are errors).
    pub success: bool,
    pub message: String,
}

impl SuccessResponse {
    pub fn new(message: impl Into<String>) -> Self {
        SuccessResponse { success: true, message: message.into() }
    }
}

/// The standard page envelope of list endpoints.
#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl<T: Serialize> Page<T> {
    pub fn new(items: Vec<T>, total_count: i64, limit: i64, offset: i64) -> Self {
        let has_more = offset + (items.len() as i64) < total_count;
        Page { items, total_count, limit, offset, has_more }
    }
}

/// Checks a `limit`/`offset` pair against the endpoint's bounds.
pub fn paging(limit: Option<i64>, offset: Option<i64>, default: i64, max: i64) -> crate::error::ApiResult<(i64, i64)> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(crate::error::ApiError::field("limit", format!("limit must be between 1 and {max}")));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(crate::error::ApiError::field("offset", "offset must be 0 or more"));
    }
    Ok((limit, offset))
}

//! Connections: listing, disconnecting and browsing; the handlers and their bodies.

pub mod dto;
pub mod handlers;

pub use handlers::{SHARED_WITH_ME, active_connection, configure, mark_used, parse_connection_id, with_drive_token};

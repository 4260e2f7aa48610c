//! Folders of Ferry's store: create, list, get, rename, delete when empty. `dto` holds the request and
//! response bodies (also the OpenAPI schemas), `handlers` the endpoints.

pub mod dto;
pub mod handlers;

pub use handlers::{configure, parse_folder_id};

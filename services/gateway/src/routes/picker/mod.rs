//! Google Picker support: the handlers and their bodies.

pub mod dto;
pub mod endpoints;
pub mod handlers;

pub use handlers::*;

//! The files API: the handlers and their bodies.

pub mod dto;
pub mod handlers;

pub use handlers::configure;

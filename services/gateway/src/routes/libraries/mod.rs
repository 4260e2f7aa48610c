//! Libraries (seed 003): named directories of the store, each linked through an integration and a connection
//! to the Drive folder it mirrors. Mounted at `/api/libraries` and `/api/integrations`, as the seed has them.

pub mod dto;
pub mod handlers;

pub use handlers::configure;

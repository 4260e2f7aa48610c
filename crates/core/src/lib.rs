//! Ferry's domain vocabulary: typed ids, job/item/file states and the rules that move between them.
//! No I/O lives here, so every other crate can depend on it cheaply.

pub mod ids;
pub mod scopes;
pub mod state;

pub use ids::{ConnectionId, FileId, IdParseError, ItemId, JobId, TenantId};
pub use scopes::{Scope, UnknownScope};
pub use state::{FileStatus, ItemStatus, JobCounts, JobKind, JobStatus, Provider, UnknownValue, VersionProvider};

//! The workers' job: turn one queue message into one file moved between Drive and Ferry's store.
//! Item state lives in Postgres, so a message may arrive twice, or after a crash, and the outcome is the same.

mod attempt;
mod describe;
mod export;
mod import;
pub mod limits;
mod observe;
mod outcome;
pub mod reaper;
mod resume;
pub mod service;
mod slots;
mod store_tasks;
mod sync;
mod worker;

pub use attempt::Progress;
pub use export::ExportAhead;
pub use outcome::ItemFailure;
pub use service::WorkerService;
pub use slots::TransferSlots;
pub use worker::{TransferContext, WorkerKind, handle_delivery, run_worker};

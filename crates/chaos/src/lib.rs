//! `make chaos`: Ferry's reliability claims proven against real processes. The `ferry-chaos` binary starts the
//! real service binaries (gateway, importer, exporter) against a per-run database, queue prefix, blob
//! directory and Drive emulator, then kills, restarts and starves them, and checks that every job ends with
//! every file exactly once. This library holds the harness; `tests/` holds the in-process checks that run with
//! `make test`.

pub mod harness;

/// Deterministic pseudo-random bytes, so large files need no fixtures.
pub use drive_emulator::seed::filler as test_bytes;

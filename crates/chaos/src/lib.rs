//! `make chaos`: Ferry's reliability claims proven against real processes. The `ferry-chaos` binary starts the
//! real service binaries (gateway, importer, exporter) against a per-run database, queue prefix, blob
//! directory and Drive emulator, then kills, restarts and starves them, and checks that every job ends with
//! every file exactly once. This library holds the harness; `tests/` holds the in-process checks that run with
//! `make test`.

pub mod harness;

use bytes::Bytes;

/// Deterministic pseudo-random bytes (xorshift), so large files need no fixtures.
pub fn test_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

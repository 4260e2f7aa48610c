//! Built-in data sets, so a freshly started emulator has something to browse and import.

use bytes::Bytes;

use crate::state::{DEFAULT_USER_EMAIL, DEFAULT_USER_NAME, EmulatorState};

/// Deterministic filler bytes (xorshift), so seeded files are the same on every start.
fn filler(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
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

/// The `demo` set for the default user: nested folders, a few binary files of several types and sizes.
pub fn seed_demo(state: &EmulatorState) {
    let owner = DEFAULT_USER_EMAIL;
    state.ensure_user(owner, DEFAULT_USER_NAME);
    let photos = state.create_folder(owner, None, "Photos");
    state.create_file(owner, Some(&photos), "beach.jpg", "image/jpeg", filler(480 * 1024, 1));
    state.create_file(owner, Some(&photos), "mountain.png", "image/png", filler(1_200 * 1024, 2));
    state.create_file(owner, Some(&photos), "city.webp", "image/webp", filler(350 * 1024, 3));
    let trips = state.create_folder(owner, Some(&photos), "2025 Trips");
    state.create_file(owner, Some(&trips), "panorama.jpg", "image/jpeg", filler(6 * 1024 * 1024, 4));
    let reports = state.create_folder(owner, None, "Reports");
    state.create_file(
        owner,
        Some(&reports),
        "summary.txt",
        "text/plain",
        Bytes::from_static(b"Quarterly summary\nEverything moved, nothing lost.\n"),
    );
    state.create_file(owner, Some(&reports), "dataset.bin", "application/octet-stream", filler(24 * 1024 * 1024, 5));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    #[test]
    fn the_demo_set_has_nested_folders_and_files() {
        let state = EmulatorState::new(EmulatorConfig::default());
        seed_demo(&state);
        let root = state.root_folder_id(DEFAULT_USER_EMAIL);
        let mut top: Vec<String> = state.children(&root).into_iter().map(|f| f.name).collect();
        top.sort();
        assert_eq!(top, ["Photos", "Reports"]);
        assert_eq!(filler(10, 7), filler(10, 7), "deterministic");
    }
}

//! Built-in data sets, so a freshly started emulator has something to browse and import, and
//! loading a directory tree (`--seed-dir`).

use std::io::Read;
use std::path::Path;

use bytes::Bytes;

use crate::convert;
use crate::state::{DEFAULT_USER_EMAIL, DEFAULT_USER_NAME, EmulatorState, FOLDER_MIME};

/// Deterministic filler bytes (xorshift), so seeded files are the same on every start. Tests across the
/// workspace use it too, to generate large files without fixtures.
pub fn filler(len: usize, seed: u64) -> Bytes {
    // Spread the seed so that nearby seeds (2 and 3, say) give different streams.
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
    // Big enough for chunked and resumed transfers; written in pieces so memory stays flat.
    let videos = state.create_folder(owner, None, "Videos");
    seed_generated(state, owner, &videos, "drone-flight.mp4", "video/mp4", 50 * 1024 * 1024, 6);
    let docs = state.create_folder(owner, None, "Documents");
    state.create_file(
        owner,
        Some(&docs),
        "Project plan",
        convert::DOCUMENT,
        Bytes::from_static(
            b"Project plan\nGoal: move every file between drives without losing one.\nMilestones\n1. Walking skeleton\n2. Reliability\n3. Emulator fidelity",
        ),
    );
    state.create_file(
        owner,
        Some(&docs),
        "Budget 2026",
        convert::SPREADSHEET,
        Bytes::from_static(
            b"Item,Quarter,Amount\r\nServers,Q1,1200\r\nStorage,Q1,300\r\n\"Travel, team offsite\",Q2,2500",
        ),
    );
    state.create_file(
        owner,
        Some(&docs),
        "Launch deck",
        convert::PRESENTATION,
        Bytes::from_static(
            b"Ferry\nMove files between clouds\n\nWhy\nOffline tests\nNo lost files\n\nNext\nShared drives",
        ),
    );
}

/// A seeded file of `len` filler bytes, written piece by piece.
fn seed_generated(state: &EmulatorState, owner: &str, parent: &str, name: &str, mime: &str, len: usize, seed: u64) {
    let stored = (|| {
        let mut w = state.store().writer()?;
        let piece = filler(1024 * 1024, seed);
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len());
            w.write(&piece[..n])?;
            left -= n;
        }
        w.commit()
    })();
    match stored {
        Ok(stored) => {
            state.seed_stored(owner, Some(parent), name, mime, Some(stored));
        }
        Err(e) => tracing::error!(error = %e, %name, "cannot seed a generated file"),
    }
}

/// Why a seed directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("seeding from {path}: {source}")]
pub struct SeedDirError {
    path: String,
    source: std::io::Error,
}

/// The MIME type Drive would give a file by its extension.
pub fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "docx" => convert::DOCX,
        "xlsx" => convert::XLSX,
        "pptx" => convert::PPTX,
        "gdoc" => convert::DOCUMENT,
        "gsheet" => convert::SPREADSHEET,
        "gslides" => convert::PRESENTATION,
        _ => "application/octet-stream",
    }
}

/// Loads a directory tree. Each top-level directory whose name is an email address is that user's My
/// Drive; anything else goes to `demo@ferry.test`'s. Files keep their bytes; `.gdoc`, `.gsheet` and
/// `.gslides` files become Docs (text), Sheets (CSV) and Slides (text, slides split by blank lines),
/// named without the extension. Returns how many files and folders were created.
pub fn seed_dir(state: &EmulatorState, dir: &Path) -> Result<usize, SeedDirError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SeedDirError { path, source }
    };
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(err(dir))?.collect::<Result<_, _>>().map_err(err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() && name.contains('@') {
            state.ensure_user(&name, "");
            count += load_tree(state, &name, None, &path)?;
        } else {
            state.ensure_user(DEFAULT_USER_EMAIL, DEFAULT_USER_NAME);
            count += load_entry(state, DEFAULT_USER_EMAIL, None, &path, &name)?;
        }
    }
    Ok(count)
}

fn load_tree(state: &EmulatorState, owner: &str, parent: Option<&str>, dir: &Path) -> Result<usize, SeedDirError> {
    let err = |source| SeedDirError { path: dir.display().to_string(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(err)?.collect::<Result<_, _>>().map_err(err)?;
    entries.sort_by_key(|e| e.file_name());
    let mut count = 0;
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        count += load_entry(state, owner, parent, &entry.path(), &name)?;
    }
    Ok(count)
}

fn load_entry(
    state: &EmulatorState,
    owner: &str,
    parent: Option<&str>,
    path: &Path,
    name: &str,
) -> Result<usize, SeedDirError> {
    let err = |source| SeedDirError { path: path.display().to_string(), source };
    if path.is_dir() {
        let folder = state.seed_stored(owner, parent, name, FOLDER_MIME, None);
        return Ok(1 + load_tree(state, owner, Some(&folder), path)?);
    }
    let mime = mime_for(name);
    if mime.starts_with(crate::state::GOOGLE_APPS_PREFIX) {
        let raw = std::fs::read(path).map_err(err)?;
        let title = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        let stored = state.store().put(&raw).map_err(err)?;
        state.seed_stored(owner, parent, title, mime, Some(stored));
        return Ok(1);
    }
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut w = state.store().writer().map_err(err)?;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n]).map_err(err)?;
    }
    let stored = w.commit().map_err(err)?;
    state.seed_stored(owner, parent, name, mime, Some(stored));
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    #[test]
    fn the_demo_set_has_nested_folders_and_files() {
        let state = EmulatorState::new(EmulatorConfig::default()).expect("state");
        seed_demo(&state);
        let root = state.root_folder_id(DEFAULT_USER_EMAIL);
        let mut top: Vec<String> = state.children(&root).into_iter().map(|f| f.name).collect();
        top.sort();
        assert_eq!(top, ["Documents", "Photos", "Reports", "Videos"]);
        let info = state.file_info(&state.children(&root)[0].id).expect("info");
        assert_eq!(info.name, "Documents");
        assert_eq!(filler(10, 7), filler(10, 7), "deterministic");
    }

    #[test]
    fn a_directory_tree_becomes_drives() {
        let dir = tempfile::tempdir().expect("dir");
        let alice = dir.path().join("alice@ferry.test");
        std::fs::create_dir_all(alice.join("Pictures/2024")).expect("mkdir");
        std::fs::write(alice.join("Pictures/2024/cat.jpg"), b"jpeg bytes").expect("write");
        std::fs::write(alice.join("Notes.gdoc"), b"line one\nline two").expect("write");
        std::fs::write(dir.path().join("loose.txt"), b"for the demo user").expect("write");
        let state = EmulatorState::new(EmulatorConfig::default()).expect("state");
        assert_eq!(seed_dir(&state, dir.path()).expect("seed"), 5);
        let root = state.root_folder_id("alice@ferry.test");
        let top = state.children(&root);
        assert_eq!(top.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Notes", "Pictures"]);
        assert_eq!(top[0].mime_type, convert::DOCUMENT);
        let year = &state.children(&top[1].id)[0];
        let cat = &state.children(&year.id)[0];
        assert_eq!((cat.name.as_str(), cat.mime_type.as_str(), cat.size), ("cat.jpg", "image/jpeg", Some(10)));
        assert_eq!(state.file_content(&cat.id).expect("content"), "jpeg bytes");
        let demo = state.children(&state.root_folder_id(DEFAULT_USER_EMAIL));
        assert_eq!(demo[0].name, "loose.txt");
        assert!(seed_dir(&state, &dir.path().join("missing")).is_err());
    }
}

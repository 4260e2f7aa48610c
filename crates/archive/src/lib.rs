//! Zip archives written as a stream: every entry is emitted as its bytes arrive (sizes and CRC follow in a data
//! descriptor), always in zip64 form, so an archive of any total size is produced from the first byte with memory
//! that depends only on the number of entries (the central directory), never on their sizes.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// 4.5: zip64.
const VERSION_NEEDED: u16 = 45;
/// Unix (3) in the high byte, so readers apply the external attributes' permission bits.
const VERSION_MADE_BY: u16 = (3 << 8) | VERSION_NEEDED;
/// Bit 3: sizes and CRC follow the data; bit 11: names are UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
const ZIP64_EXTRA: u16 = 0x0001;

/// A modification time as MS-DOS stores it (two-second resolution, 1980-2107).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosTime {
    time: u16,
    date: u16,
}

impl DosTime {
    /// From calendar fields; years outside 1980-2107 are clamped.
    pub fn new(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        let year = year.clamp(1980, 2107) - 1980;
        let date = (year << 9) | (month.clamp(1, 12) << 5) | day.clamp(1, 31);
        let time = (hour.min(23) << 11) | (minute.min(59) << 5) | (second.min(59) / 2);
        DosTime { time: u16::try_from(time).unwrap_or(0), date: u16::try_from(date).unwrap_or(0) }
    }
}

struct CentralRecord {
    path: String,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
    directory: bool,
}

/// Writes a zip archive as a sequence of byte chunks.
pub struct ZipWriter {
    offset: u64,
    modified: DosTime,
    central: Vec<CentralRecord>,
}

/// One file entry being written: feed it the content, then [`FileEntry::finish`] it.
pub struct FileEntry {
    path: String,
    offset: u64,
    method: u16,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    compressed: u64,
    deflate: Option<Compress>,
}

impl ZipWriter {
    pub fn new(modified: DosTime) -> Self {
        ZipWriter { offset: 0, modified, central: Vec::new() }
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn local_header(&self, path: &str, method: u16) -> Bytes {
        let mut out = BytesMut::with_capacity(30 + path.len() + 20);
        out.put_u32_le(LOCAL_HEADER);
        out.put_u16_le(VERSION_NEEDED);
        out.put_u16_le(FLAGS);
        out.put_u16_le(method);
        out.put_u16_le(self.modified.time);
        out.put_u16_le(self.modified.date);
        out.put_u32_le(0); // CRC: in the data descriptor
        // Sizes are in the descriptor; 0xFFFFFFFF plus a zip64 extra field says they are 8 bytes there.
        out.put_u32_le(u32::MAX);
        out.put_u32_le(u32::MAX);
        out.put_u16_le(u16::try_from(path.len()).unwrap_or(u16::MAX));
        out.put_u16_le(20);
        out.put_slice(path.as_bytes());
        out.put_u16_le(ZIP64_EXTRA);
        out.put_u16_le(16);
        out.put_u64_le(0);
        out.put_u64_le(0);
        out.freeze()
    }

    /// A directory entry (`path` ends with `/`), kept even when empty.
    pub fn directory(&mut self, path: &str) -> Bytes {
        let entry = self.begin_file(path, false);
        let mut out = BytesMut::from(&entry.0[..]);
        out.extend_from_slice(&entry.1.finish_into(self, true));
        out.freeze()
    }

    /// Starts a file entry: the returned bytes are its header. `compress` deflates the content (leave it off for
    /// content that is already compressed).
    pub fn begin_file(&mut self, path: &str, compress: bool) -> (Bytes, FileEntry) {
        let path = truncate_name(path);
        let method = if compress { DEFLATED } else { STORED };
        let header = self.local_header(&path, method);
        let entry = FileEntry {
            path,
            offset: self.offset,
            method,
            crc: crc32fast::Hasher::new(),
            uncompressed: 0,
            compressed: 0,
            deflate: compress.then(|| Compress::new(Compression::fast(), false)),
        };
        self.offset += header.len() as u64;
        (header, entry)
    }

    /// The central directory and the end records: the archive's last bytes.
    pub fn finish(self) -> Bytes {
        let mut out = BytesMut::new();
        let start = self.offset;
        for record in &self.central {
            out.put_u32_le(CENTRAL_HEADER);
            out.put_u16_le(VERSION_MADE_BY);
            out.put_u16_le(VERSION_NEEDED);
            out.put_u16_le(FLAGS);
            out.put_u16_le(record.method);
            out.put_u16_le(self.modified.time);
            out.put_u16_le(self.modified.date);
            out.put_u32_le(record.crc);
            out.put_u32_le(u32::MAX);
            out.put_u32_le(u32::MAX);
            out.put_u16_le(u16::try_from(record.path.len()).unwrap_or(u16::MAX));
            out.put_u16_le(28);
            out.put_u16_le(0); // comment
            out.put_u16_le(0); // disk
            out.put_u16_le(0); // internal attributes
            let external = if record.directory { (0o040_755u32 << 16) | 0x10 } else { 0o100_644u32 << 16 };
            out.put_u32_le(external);
            out.put_u32_le(u32::MAX);
            out.put_slice(record.path.as_bytes());
            out.put_u16_le(ZIP64_EXTRA);
            out.put_u16_le(24);
            out.put_u64_le(record.uncompressed);
            out.put_u64_le(record.compressed);
            out.put_u64_le(record.offset);
        }
        let size = out.len() as u64;
        let zip64_end = start + size;
        let count = self.central.len() as u64;
        out.put_u32_le(ZIP64_END);
        out.put_u64_le(44);
        out.put_u16_le(VERSION_MADE_BY);
        out.put_u16_le(VERSION_NEEDED);
        out.put_u32_le(0);
        out.put_u32_le(0);
        out.put_u64_le(count);
        out.put_u64_le(count);
        out.put_u64_le(size);
        out.put_u64_le(start);
        out.put_u32_le(ZIP64_LOCATOR);
        out.put_u32_le(0);
        out.put_u64_le(zip64_end);
        out.put_u32_le(1);
        out.put_u32_le(END_OF_CENTRAL_DIRECTORY);
        out.put_u16_le(0);
        out.put_u16_le(0);
        out.put_u16_le(u16::MAX);
        out.put_u16_le(u16::MAX);
        out.put_u32_le(u32::MAX);
        out.put_u32_le(u32::MAX);
        out.put_u16_le(0);
        out.freeze()
    }
}

/// Names longer than a zip header can say are cut at a character boundary.
fn truncate_name(path: &str) -> String {
    let mut end = path.len().min(usize::from(u16::MAX));
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_owned()
}

impl FileEntry {
    /// Adds content; the returned bytes (possibly empty while the compressor gathers input) go out next.
    pub fn update(&mut self, chunk: &[u8]) -> Bytes {
        self.crc.update(chunk);
        self.uncompressed += chunk.len() as u64;
        let out = match &mut self.deflate {
            None => Bytes::copy_from_slice(chunk),
            Some(deflate) => run_deflate(deflate, chunk, FlushCompress::None),
        };
        self.compressed += out.len() as u64;
        out
    }

    /// Ends the entry: the compressor's last bytes and the data descriptor.
    pub fn finish(self, writer: &mut ZipWriter) -> Bytes {
        self.finish_into(writer, false)
    }

    fn finish_into(mut self, writer: &mut ZipWriter, directory: bool) -> Bytes {
        let mut out = BytesMut::new();
        if let Some(deflate) = &mut self.deflate {
            let tail = run_deflate(deflate, &[], FlushCompress::Finish);
            self.compressed += tail.len() as u64;
            out.extend_from_slice(&tail);
        }
        let crc = self.crc.finalize();
        out.put_u32_le(DATA_DESCRIPTOR);
        out.put_u32_le(crc);
        out.put_u64_le(self.compressed);
        out.put_u64_le(self.uncompressed);
        writer.offset += self.compressed + 24;
        writer.central.push(CentralRecord {
            path: self.path,
            method: self.method,
            crc,
            compressed: self.compressed,
            uncompressed: self.uncompressed,
            offset: self.offset,
            directory,
        });
        out.freeze()
    }
}

fn run_deflate(deflate: &mut Compress, mut input: &[u8], flush: FlushCompress) -> Bytes {
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let before_in = deflate.total_in();
        let status = deflate.compress_vec(input, &mut out, flush);
        let consumed = usize::try_from(deflate.total_in() - before_in).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        match status {
            Ok(Status::StreamEnd) => break,
            Ok(_) if input.is_empty() && !matches!(flush, FlushCompress::Finish) && out.len() < out.capacity() => {
                break;
            }
            Ok(_) => {}
            // In-memory deflate of valid input cannot fail; stop rather than loop.
            Err(_) => break,
        }
    }
    Bytes::from(out)
}

/// Types whose bytes are already compressed: stored as they are, since deflating them again costs time and
/// gains nothing.
pub fn is_already_compressed(mime: Option<&str>, name: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif", "mp3", "mp4", "m4a", "m4v", "mov", "mkv", "webm",
        "ogg", "opus", "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "docx", "xlsx", "pptx", "odt", "ods",
        "odp", "epub", "jar", "apk", "pdf",
    ];
    let mime = mime.map(|m| m.trim().to_ascii_lowercase()).unwrap_or_default();
    let compressed_mime = mime.starts_with("video/")
        || (mime.starts_with("audio/") && !mime.contains("wav"))
        || (mime.starts_with("image/") && !mime.contains("bmp") && !mime.contains("svg") && !mime.contains("tiff"))
        || matches!(
            mime.as_str(),
            "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/x-7z-compressed"
                | "application/x-rar-compressed"
                | "application/vnd.rar"
                | "application/x-bzip2"
                | "application/x-xz"
                | "application/zstd"
                | "application/pdf"
                | "application/epub+zip"
        )
        || mime.starts_with("application/vnd.openxmlformats-officedocument.")
        || mime.starts_with("application/vnd.oasis.opendocument.");
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    compressed_mime || EXTENSIONS.contains(&extension.as_str())
}

/// Makes entry paths safe and unique: no `/` or `\` inside a name, no `.`/`..`, no control characters, and a
/// name already used in the same directory gets ` (1)`, ` (2)`, ... before its extension.
#[derive(Debug, Default)]
pub struct UniquePaths {
    used: HashSet<String>,
}

impl UniquePaths {
    pub fn new() -> Self {
        Self::default()
    }

    /// The path of `name` inside `directory` (`""` or a path ending with `/`); directories end with `/`.
    pub fn place(&mut self, directory: &str, name: &str, is_directory: bool) -> String {
        let clean: String =
            name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
        let clean = match clean.trim() {
            "" | "." | ".." => "_".to_owned(),
            trimmed => trimmed.to_owned(),
        };
        let (stem, extension) = match clean.rsplit_once('.') {
            Some((stem, ext)) if !is_directory && !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
            _ => (clean.clone(), String::new()),
        };
        let suffix = if is_directory { "/" } else { "" };
        let mut candidate = format!("{directory}{clean}");
        let mut counter = 1;
        // A file and a directory of one name collide too: compare without the trailing slash.
        while self.used.contains(&candidate.to_lowercase()) {
            candidate = format!("{directory}{stem} ({counter}){extension}");
            counter += 1;
        }
        self.used.insert(candidate.to_lowercase());
        format!("{candidate}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;

    /// An entry's path and, for a file, its content and whether to deflate it.
    type Entry<'a> = (&'a str, Option<(&'a [u8], bool)>);

    fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut writer = ZipWriter::new(DosTime::new(2026, 11, 24, 12, 30, 10));
        let mut out = Vec::new();
        for (path, content) in entries {
            match content {
                None => out.extend_from_slice(&writer.directory(path)),
                Some((bytes, compress)) => {
                    let (header, mut entry) = writer.begin_file(path, *compress);
                    out.extend_from_slice(&header);
                    for chunk in bytes.chunks(7000) {
                        out.extend_from_slice(&entry.update(chunk));
                    }
                    out.extend_from_slice(&entry.finish(&mut writer));
                }
            }
        }
        assert_eq!(writer.offset(), out.len() as u64);
        out.extend_from_slice(&writer.finish());
        out
    }

    #[test]
    fn a_streamed_archive_reads_back_with_its_directories_names_and_bytes() {
        let text = "hello zip ".repeat(5000);
        let noise: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let bytes = archive(&[
            ("Docs/", None),
            ("Docs/empty/", None),
            ("Docs/readme – ü.txt", Some((text.as_bytes(), true))),
            ("Docs/photo.jpg", Some((&noise, false))),
            ("Docs/zero.bin", Some((b"", true))),
        ]);
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a valid zip");
        assert_eq!(zip.len(), 5);
        let mut names: Vec<String> = zip.file_names().map(|name| name.expect("a name").into_owned()).collect();
        names.sort();
        assert_eq!(names, ["Docs/", "Docs/empty/", "Docs/photo.jpg", "Docs/readme – ü.txt", "Docs/zero.bin"]);
        assert!(zip.by_name("Docs/empty/").expect("dir").is_dir());
        let mut read = String::new();
        let mut entry = zip.by_name("Docs/readme – ü.txt").expect("text");
        assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
        assert!(entry.compressed_size() < entry.size() / 10, "text is deflated");
        entry.read_to_string(&mut read).expect("inflates with a matching CRC");
        drop(entry);
        assert_eq!(read, text);
        let mut photo = Vec::new();
        let mut entry = zip.by_name("Docs/photo.jpg").expect("photo");
        assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
        entry.read_to_end(&mut photo).expect("reads with a matching CRC");
        assert_eq!(photo, noise);
    }

    #[test]
    fn names_are_made_safe_and_unique_within_their_directory() {
        let mut paths = UniquePaths::new();
        assert_eq!(paths.place("", "a.txt", false), "a.txt");
        assert_eq!(paths.place("", "a.txt", false), "a (1).txt");
        assert_eq!(paths.place("", "A.TXT", false), "A (2).TXT");
        assert_eq!(paths.place("", "a.txt", true), "a.txt (1)/");
        assert_eq!(paths.place("d/", "a.txt", false), "d/a.txt");
        assert_eq!(paths.place("", "../etc/passwd", false), ".._etc_passwd");
        assert_eq!(paths.place("", "..", true), "_/");
    }

    #[test]
    fn already_compressed_types_are_recognised_by_type_or_name() {
        assert!(is_already_compressed(Some("image/jpeg"), "x"));
        assert!(is_already_compressed(None, "movie.MP4"));
        assert!(is_already_compressed(
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "d"
        ));
        assert!(!is_already_compressed(Some("text/plain"), "notes.txt"));
        assert!(!is_already_compressed(Some("image/bmp"), "raw.bmp"));
    }
}

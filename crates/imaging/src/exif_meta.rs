//! The few EXIF facts Ferry keeps. EXIF is advisory: a broken block yields no facts rather than
//! refusing an otherwise good picture.

use exif::{DateTime, Exif, In, Reader, Tag, Value};

/// Longest make/model string kept, in characters.
const MAX_TEXT_CHARS: usize = 100;

/// Real EXIF fits a JPEG APP1 segment (64 KiB); anything far larger is not worth parsing.
const MAX_EXIF_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct ExifMeta {
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub orientation: Option<u16>,
}

pub(crate) fn read(data: &[u8]) -> ExifMeta {
    if data.len() > MAX_EXIF_BYTES {
        return ExifMeta::default();
    }
    let mut reader = Reader::new();
    reader.continue_on_error(true);
    // Keep whatever parsed before a damaged entry.
    let Ok(exif) = reader.read_raw(data.to_vec()).or_else(|error| error.distill_partial_result(|_| {})) else {
        return ExifMeta::default();
    };
    ExifMeta {
        taken_at: taken_at(&exif),
        camera_make: text(&exif, Tag::Make),
        camera_model: text(&exif, Tag::Model),
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|field| field.value.get_uint(0))
            .filter(|value| (1..=8).contains(value))
            .and_then(|value| u16::try_from(value).ok()),
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

/// Trimmed, free of NULs and other control characters, and bounded in length.
fn text(exif: &Exif, tag: Tag) -> Option<String> {
    let raw = String::from_utf8_lossy(ascii(exif, tag)?);
    let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
    let bounded: String = clean.trim().chars().take(MAX_TEXT_CHARS).collect();
    let bounded = bounded.trim_end();
    (!bounded.is_empty()).then(|| bounded.to_owned())
}

fn taken_at(exif: &Exif) -> Option<String> {
    [(Tag::DateTimeOriginal, Tag::OffsetTimeOriginal), (Tag::DateTime, Tag::OffsetTime)].into_iter().find_map(
        |(when, zone)| {
            let local = local_time(ascii(exif, when)?)?;
            Some(match ascii(exif, zone).and_then(offset) {
                Some(offset) => format!("{local}{offset}"),
                None => local,
            })
        },
    )
}

/// `YYYY:MM:DD HH:MM:SS` to `YYYY-MM-DDTHH:MM:SS`, refusing blanks and out-of-range fields
/// (cameras with an unset clock write zeros).
fn local_time(raw: &[u8]) -> Option<String> {
    let t = DateTime::from_ascii(raw).ok()?;
    let valid = (1..=9999).contains(&t.year)
        && (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour <= 23
        && t.minute <= 59
        && t.second <= 60;
    valid.then(|| format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second))
}

/// `+HH:MM` / `-HH:MM` as written by EXIF 2.31, checked so the result stays valid RFC 3339.
fn offset(raw: &[u8]) -> Option<String> {
    let &[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2, ..] = raw else {
        return None;
    };
    let digits = [h1, h2, m1, m2];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = (h1 - b'0') * 10 + (h2 - b'0');
    let minutes = (m1 - b'0') * 10 + (m2 - b'0');
    (hours <= 23 && minutes <= 59).then(|| format!("{}{hours:02}:{minutes:02}", char::from(sign)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_formats_and_rejects_unset_clocks() {
        assert_eq!(local_time(b"2024:05:17 14:03:22").as_deref(), Some("2024-05-17T14:03:22"));
        assert_eq!(local_time(b"0000:00:00 00:00:00"), None);
        assert_eq!(local_time(b"    :  :     :  :  "), None);
        assert_eq!(local_time(b"2024:13:17 14:03:22"), None);
        assert_eq!(local_time(b"garbage"), None);
    }

    #[test]
    fn offset_accepts_only_valid_zones() {
        assert_eq!(offset(b"+02:00").as_deref(), Some("+02:00"));
        assert_eq!(offset(b"-05:30\0").as_deref(), Some("-05:30"));
        assert_eq!(offset(b"   :  "), None);
        assert_eq!(offset(b"+99:00"), None);
        assert_eq!(offset(b"02:00"), None);
    }

    #[test]
    fn garbage_exif_gives_no_facts() {
        let meta = read(b"not a tiff header at all");
        assert!(meta.orientation.is_none() && meta.taken_at.is_none());
        assert!(read(&[]).camera_make.is_none());
    }
}

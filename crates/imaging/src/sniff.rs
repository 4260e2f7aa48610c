//! Format detection from magic bytes. Names and declared media types are user-controlled, so
//! they are never consulted.

use crate::{ImageFormat, Refusal};

pub(crate) fn sniff(bytes: &[u8]) -> Result<ImageFormat, Refusal> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(ImageFormat::Gif);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(ImageFormat::WebP);
    }
    match other_image_format(bytes) {
        Some(format) => Err(Refusal::Unsupported { format: format.to_owned() }),
        None => Err(Refusal::NotAnImage),
    }
}

/// Recognises common image formats we do not handle, so the user hears "unsupported" rather
/// than "not an image".
fn other_image_format(bytes: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..).is_some_and(|b| b.starts_with(magic));
    if at(0, b"II*\0") || at(0, b"MM\0*") || at(0, b"II+\0") || at(0, b"MM\0+") {
        return Some("TIFF");
    }
    if at(0, b"BM") && bmp_info_header(bytes) {
        return Some("BMP");
    }
    if at(4, b"ftyp") {
        return match bytes.get(8..12)? {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => Some("HEIF"),
            b"avif" | b"avis" => Some("AVIF"),
            b"crx " => Some("Canon raw"),
            _ => None,
        };
    }
    if at(0, &[0xFF, 0x0A]) || at(0, b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    if at(0, b"\0\0\0\x0cjP  \r\n\x87\n") || at(0, &[0xFF, 0x4F, 0xFF, 0x51]) {
        return Some("JPEG 2000");
    }
    if at(0, b"8BPS") {
        return Some("Photoshop");
    }
    if at(0, b"qoif") {
        return Some("QOI");
    }
    if at(0, &[0x76, 0x2F, 0x31, 0x01]) {
        return Some("OpenEXR");
    }
    if at(0, &[0, 0, 1, 0]) && bytes.get(4..6).is_some_and(|n| n != [0, 0]) {
        return Some("ICO");
    }
    if looks_like_svg(bytes) {
        return Some("SVG");
    }
    None
}

/// "BM" alone is too common a prefix; a real BMP carries a known DIB header size at offset 14.
fn bmp_info_header(bytes: &[u8]) -> bool {
    match bytes.get(14..18) {
        Some(&[a, b, c, d]) => matches!(u32::from_le_bytes([a, b, c, d]), 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124),
        _ => false,
    }
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let head = &head[start..];
    head.starts_with(b"<svg")
        || ((head.starts_with(b"<?xml") || head.starts_with(b"<!DOCTYPE svg")) && head.windows(4).any(|w| w == b"<svg"))
}

//! Hand-written header walkers for the four formats. They find the dimensions (and the EXIF
//! block) without allocating, so a decompression bomb is refused before any decoder sees it,
//! and they check the file's structure is complete before a decoder is allowed to run.

use crate::{ImageFormat, Limits, Refusal, sniff};

/// What the header says, borrowed from the input.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    pub format: ImageFormat,
    /// Stored (not displayed) dimensions.
    pub width: u32,
    pub height: u32,
    /// TIFF-structured EXIF data, without any `Exif\0\0` prefix.
    pub exif: Option<&'a [u8]>,
    /// Upper bound of bytes per pixel in the decoded buffer, for the allocation estimate.
    bytes_per_pixel: u64,
    /// GIF frames are decoded into their own buffer before compositing, so the first frame's
    /// size is checked too.
    first_frame: Option<(u32, u32)>,
    /// Where JPEG's first scan (SOS) starts, for the completeness walk.
    scan_start: usize,
}

/// Checks the input size, sniffs the format, parses the header and applies the dimension limits.
pub(crate) fn inspect<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Header<'a>, Refusal> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limits.max_input_bytes {
        return Err(Refusal::InputTooLarge { bytes: size, limit: limits.max_input_bytes });
    }
    let header = match sniff::sniff(bytes)? {
        ImageFormat::Jpeg => jpeg(bytes)?,
        ImageFormat::Png => png(bytes)?,
        ImageFormat::Gif => gif(bytes)?,
        ImageFormat::WebP => webp(bytes)?,
    };
    if header.width == 0 || header.height == 0 {
        return Err(Refusal::corrupt("the header gives a width or height of zero"));
    }
    check_size(header.width, header.height, header.bytes_per_pixel, limits)?;
    if let Some((width, height)) = header.first_frame {
        check_size(width, height, header.bytes_per_pixel, limits)?;
    }
    Ok(header)
}

fn check_size(width: u32, height: u32, bytes_per_pixel: u64, limits: &Limits) -> Result<(), Refusal> {
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_width
        || height > limits.max_height
        || pixels > limits.max_pixels
        || pixels.saturating_mul(bytes_per_pixel) > limits.max_alloc_bytes
    {
        return Err(Refusal::TooLarge { width, height });
    }
    Ok(())
}

/// Refuses files whose structure stops before the end of the (first) image: decoders would
/// otherwise hand back a partly grey picture.
pub(crate) fn ensure_complete(bytes: &[u8], header: &Header<'_>) -> Result<(), Refusal> {
    let complete = match header.format {
        ImageFormat::Jpeg => jpeg_complete(bytes, header.scan_start),
        ImageFormat::Png => png_walk(bytes).ended,
        ImageFormat::Gif => gif_first_frame_complete(bytes),
        ImageFormat::WebP => webp_walk(bytes).is_some_and(|walk| walk.complete),
    };
    if complete { Ok(()) } else { Err(Refusal::corrupt("the file is truncated")) }
}

fn u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u24_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(3)?)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

fn truncated_header() -> Refusal {
    Refusal::corrupt("the file ends inside its header")
}

// ---------------------------------------------------------------- JPEG

/// Frame headers that carry the dimensions (SOF0-SOF15 except DHT, JPG and DAC).
fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Marker segments without a length field.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7)
}

/// Walks the marker segments from SOI to the first scan.
fn jpeg(bytes: &[u8]) -> Result<Header<'_>, Refusal> {
    let mut pos = 2;
    let mut frame: Option<(u32, u32, u8)> = None;
    let mut exif = None;
    loop {
        let (marker, after) = next_marker(bytes, pos).ok_or_else(truncated_header)?;
        pos = after;
        if is_standalone(marker) {
            continue;
        }
        match marker {
            0xD8 | 0xD9 => return Err(Refusal::corrupt("the file has no image frame")),
            _ => {}
        }
        let length = usize::from(u16_be(bytes, pos).ok_or_else(truncated_header)?);
        if length < 2 {
            return Err(Refusal::corrupt("a JPEG segment has an impossible length"));
        }
        let segment = bytes.get(pos + 2..pos + length).ok_or_else(truncated_header)?;
        if marker == 0xDA {
            let Some((width, height, components)) = frame else {
                return Err(Refusal::corrupt("the image data comes before the frame header"));
            };
            return Ok(Header {
                format: ImageFormat::Jpeg,
                width,
                height,
                exif,
                // Decoded as grey, RGB, or CMYK converted to RGB; 4 covers all.
                bytes_per_pixel: u64::from(components.clamp(1, 4)),
                first_frame: None,
                scan_start: pos - 2,
            });
        }
        if marker == 0xE1 && exif.is_none() {
            exif = segment.strip_prefix(b"Exif\0\0");
        }
        if is_sof(marker) {
            if frame.is_some() {
                return Err(Refusal::corrupt("the file has two frame headers"));
            }
            // precision, height, width, component count
            let (Some(height), Some(width), Some(&components)) =
                (u16_be(segment, 1), u16_be(segment, 3), segment.get(5))
            else {
                return Err(truncated_header());
            };
            frame = Some((u32::from(width), u32::from(height), components));
        }
        pos += length;
    }
}

/// Finds the marker at `pos` (skipping fill bytes) and returns it with the offset after it.
fn next_marker(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    if *bytes.get(pos)? != 0xFF {
        return None;
    }
    while *bytes.get(pos)? == 0xFF {
        pos += 1;
    }
    Some((*bytes.get(pos)?, pos + 1))
}

/// From the first SOS, skips segments and entropy-coded data until EOI.
fn jpeg_complete(bytes: &[u8], mut pos: usize) -> bool {
    loop {
        let Some((marker, after)) = next_marker(bytes, pos) else {
            return false;
        };
        pos = after;
        if marker == 0xD9 {
            return true;
        }
        if is_standalone(marker) {
            continue;
        }
        let Some(length) = u16_be(bytes, pos) else {
            return false;
        };
        pos += usize::from(length);
        if pos > bytes.len() {
            return false;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or RSTn inside it.
            loop {
                let Some(offset) = bytes.get(pos..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) else {
                    return false;
                };
                pos += offset;
                match bytes.get(pos + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => pos += 2,
                    Some(_) => break,
                }
            }
        }
    }
}

// ---------------------------------------------------------------- PNG

fn png(bytes: &[u8]) -> Result<Header<'_>, Refusal> {
    // Signature, then IHDR must come first: length 13, type, data, CRC.
    if u32_be(bytes, 8) != Some(13) || bytes.get(12..16) != Some(b"IHDR") {
        return Err(if bytes.len() < 16 {
            truncated_header()
        } else {
            Refusal::corrupt("the PNG does not start with an IHDR chunk")
        });
    }
    let ihdr = bytes.get(16..29).ok_or_else(truncated_header)?;
    let (Some(width), Some(height)) = (u32_be(ihdr, 0), u32_be(ihdr, 4)) else {
        return Err(truncated_header());
    };
    if width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(Refusal::corrupt("the PNG header gives impossible dimensions"));
    }
    let (depth, color) = (ihdr[8], ihdr[9]);
    let channels: u64 = match (color, depth) {
        (0, 1 | 2 | 4 | 8 | 16) => 1,
        (2, 8 | 16) => 3,
        // Palette images expand to RGB or RGBA.
        (3, 1 | 2 | 4 | 8) => 4,
        (4, 8 | 16) => 2,
        (6, 8 | 16) => 4,
        _ => return Err(Refusal::corrupt("the PNG header gives an invalid colour type or bit depth")),
    };
    // tRNS can add an alpha channel to grey and RGB; 16-bit keeps two bytes per sample.
    let bytes_per_pixel = (channels + 1).min(4) * if depth == 16 { 2 } else { 1 };
    let walk = png_walk(bytes);
    Ok(Header {
        format: ImageFormat::Png,
        width,
        height,
        exif: walk.exif.map(|exif| exif.strip_prefix(b"Exif\0\0").unwrap_or(exif)),
        bytes_per_pixel,
        first_frame: None,
        scan_start: 0,
    })
}

struct PngWalk<'a> {
    exif: Option<&'a [u8]>,
    ended: bool,
}

/// Jumps from chunk to chunk by their lengths (no data is read) to find eXIf and IEND.
fn png_walk(bytes: &[u8]) -> PngWalk<'_> {
    let mut pos = 8usize;
    let mut walk = PngWalk { exif: None, ended: false };
    while let (Some(length), Some(kind)) = (u32_be(bytes, pos), bytes.get(pos + 4..pos + 8)) {
        let data_start = pos + 8;
        let Some(data_end) = usize::try_from(length).ok().and_then(|length| data_start.checked_add(length)) else {
            break;
        };
        let chunk_end = data_end.saturating_add(4);
        if chunk_end > bytes.len() {
            break;
        }
        if kind == b"eXIf" && walk.exif.is_none() {
            walk.exif = bytes.get(data_start..data_end);
        }
        if kind == b"IEND" {
            walk.ended = true;
            break;
        }
        pos = chunk_end;
    }
    walk
}

// ---------------------------------------------------------------- GIF

/// Skips a colour table if the flags byte announces one.
fn skip_color_table(flags: u8, pos: usize) -> usize {
    if flags & 0x80 != 0 { pos + 3 * (2usize << (flags & 0x07)) } else { pos }
}

/// Skips data sub-blocks up to and including the terminator; None if the file ends first.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let size = usize::from(*bytes.get(pos)?);
        pos += 1;
        if size == 0 {
            return Some(pos);
        }
        pos += size;
    }
}

/// Walks to the first image descriptor; returns its offset and the frame's dimensions.
fn gif_first_frame(bytes: &[u8]) -> Result<(usize, u32, u32), Refusal> {
    let flags = *bytes.get(10).ok_or_else(truncated_header)?;
    let mut pos = skip_color_table(flags, 13);
    loop {
        match *bytes.get(pos).ok_or_else(truncated_header)? {
            0x21 => pos = skip_sub_blocks(bytes, pos + 2).ok_or_else(truncated_header)?,
            0x2C => {
                let (Some(width), Some(height)) = (u16_le(bytes, pos + 5), u16_le(bytes, pos + 7)) else {
                    return Err(truncated_header());
                };
                return Ok((pos, u32::from(width), u32::from(height)));
            }
            0x3B => return Err(Refusal::corrupt("the GIF has no image in it")),
            _ => return Err(Refusal::corrupt("the GIF contains an unknown block")),
        }
    }
}

fn gif(bytes: &[u8]) -> Result<Header<'_>, Refusal> {
    let (Some(width), Some(height)) = (u16_le(bytes, 6), u16_le(bytes, 8)) else {
        return Err(truncated_header());
    };
    let (_, frame_width, frame_height) = gif_first_frame(bytes)?;
    Ok(Header {
        format: ImageFormat::Gif,
        width: u32::from(width),
        height: u32::from(height),
        exif: None,
        bytes_per_pixel: 4,
        first_frame: Some((frame_width, frame_height)),
        scan_start: 0,
    })
}

fn gif_first_frame_complete(bytes: &[u8]) -> bool {
    let Ok((descriptor, _, _)) = gif_first_frame(bytes) else {
        return false;
    };
    let Some(&flags) = bytes.get(descriptor + 9) else {
        return false;
    };
    // After the descriptor and its colour table comes the LZW minimum code size byte.
    let data = skip_color_table(flags, descriptor + 10) + 1;
    data <= bytes.len() && skip_sub_blocks(bytes, data).is_some()
}

// ---------------------------------------------------------------- WebP

struct WebpWalk<'a> {
    exif: Option<&'a [u8]>,
    complete: bool,
}

/// Walks the RIFF chunks after the first one, looking for EXIF; complete when the RIFF size
/// fits the file and every chunk fits the RIFF.
fn webp_walk(bytes: &[u8]) -> Option<WebpWalk<'_>> {
    let riff_end = usize::try_from(u32_le(bytes, 4)?).ok()?.checked_add(8)?;
    let end = riff_end.min(bytes.len());
    let mut walk = WebpWalk { exif: None, complete: riff_end <= bytes.len() };
    let mut pos = 12usize;
    while pos < end {
        let (Some(kind), Some(size)) = (bytes.get(pos..pos + 4), u32_le(bytes, pos + 4)) else {
            walk.complete = false;
            break;
        };
        let size = usize::try_from(size).ok()?;
        let data_start = pos + 8;
        let Some(data_end) = data_start.checked_add(size).filter(|&e| e <= end) else {
            walk.complete = false;
            break;
        };
        if kind == b"EXIF" && walk.exif.is_none() {
            let data = &bytes[data_start..data_end];
            walk.exif = Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data));
        }
        // Chunks are padded to an even size.
        pos = data_end + (size & 1);
    }
    Some(walk)
}

fn webp(bytes: &[u8]) -> Result<Header<'_>, Refusal> {
    let kind = bytes.get(12..16).ok_or_else(truncated_header)?;
    let data = bytes.get(20..).ok_or_else(truncated_header)?;
    let (width, height, alpha) = match kind {
        b"VP8 " => {
            // Frame tag (3 bytes), start code, then 14-bit width and height.
            if data.get(3..6).ok_or_else(truncated_header)? != [0x9D, 0x01, 0x2A] {
                return Err(Refusal::corrupt("the WebP frame has no start code"));
            }
            let (Some(w), Some(h)) = (u16_le(data, 6), u16_le(data, 8)) else {
                return Err(truncated_header());
            };
            (u32::from(w & 0x3FFF), u32::from(h & 0x3FFF), false)
        }
        b"VP8L" => {
            if data.first() != Some(&0x2F) {
                return Err(Refusal::corrupt("the lossless WebP has no signature"));
            }
            let bits = u32_le(data, 1).ok_or_else(truncated_header)?;
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, true)
        }
        b"VP8X" => {
            let (Some(w), Some(h)) = (u24_le(data, 4), u24_le(data, 7)) else {
                return Err(truncated_header());
            };
            (w + 1, h + 1, true)
        }
        _ => return Err(Refusal::corrupt("the WebP does not start with an image chunk")),
    };
    Ok(Header {
        format: ImageFormat::WebP,
        width,
        height,
        exif: if kind == b"VP8X" { webp_walk(bytes).and_then(|walk| walk.exif) } else { None },
        bytes_per_pixel: if alpha { 4 } else { 3 },
        first_frame: None,
        scan_start: 0,
    })
}

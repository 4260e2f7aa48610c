//! Decoding, scaling and encoding for `thumbnail`, once the header has passed the limits.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageError, ImageReader};

use crate::header::Header;
use crate::{ImageFormat, Limits, Refusal, Thumbnail};

const JPEG_QUALITY: u8 = 80;

/// Longest reason text carried out of a decoder error.
const MAX_REASON_CHARS: usize = 200;

pub(crate) fn thumbnail(
    bytes: &[u8],
    header: &Header<'_>,
    orientation: Option<u16>,
    longest_side: u32,
    limits: &Limits,
) -> Result<Thumbnail, Refusal> {
    let image = decode(bytes, header, limits)?;
    let (width, height) = fit(image.width(), image.height(), longest_side);
    // Scale before turning: rotating the full-size picture would copy it.
    let mut small = if (width, height) == (image.width(), image.height()) {
        image
    } else {
        let small = image.thumbnail_exact(width, height);
        drop(image);
        small
    };
    if let Some(orientation) = orientation.and_then(|o| u8::try_from(o).ok()).and_then(Orientation::from_exif) {
        small.apply_orientation(orientation);
    }
    encode(&small)
}

fn decode(bytes: &[u8], header: &Header<'_>, limits: &Limits) -> Result<DynamicImage, Refusal> {
    let format = match header.format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
    };
    // The header was checked already; these make the decoder refuse if it reads something else.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits);
    reader.decode().map_err(|error| match error {
        ImageError::Limits(_) => Refusal::TooLarge { width: header.width, height: header.height },
        ImageError::Unsupported(error) => {
            Refusal::Unsupported { format: format!("this kind of {} ({})", header.format.name(), bounded(&error)) }
        }
        other => Refusal::corrupt(bounded(&other)),
    })
}

fn bounded(error: &impl std::fmt::Display) -> String {
    error.to_string().chars().take(MAX_REASON_CHARS).collect()
}

/// Target size with the longest side at `longest_side`, never larger than the source.
pub(crate) fn fit(width: u32, height: u32, longest_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= longest_side {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(longest_side) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled.max(1)).unwrap_or(longest_side)
    };
    (scale(width), scale(height))
}

/// PNG only when some pixel is actually see-through: GIF and many PNGs carry an alpha channel
/// that is fully opaque, and those make smaller JPEGs.
fn encode(image: &DynamicImage) -> Result<Thumbnail, Refusal> {
    let (width, height) = (image.width(), image.height());
    let mut bytes = Vec::new();
    let failed = |error: ImageError| Refusal::EncodeFailed { reason: bounded(&error) };
    let transparent = image
        .color()
        .has_alpha()
        .then(|| image.to_rgba8())
        .filter(|rgba| rgba.pixels().any(|pixel| pixel.0[3] != u8::MAX));
    let mime = if let Some(rgba) = transparent {
        PngEncoder::new(&mut bytes)
            .write_image(rgba.as_raw(), width, height, ExtendedColorType::Rgba8)
            .map_err(failed)?;
        ImageFormat::Png.mime()
    } else {
        let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
        if image.color().has_color() {
            let rgb = image.to_rgb8();
            encoder.write_image(rgb.as_raw(), width, height, ExtendedColorType::Rgb8)
        } else {
            let luma = image.to_luma8();
            encoder.write_image(luma.as_raw(), width, height, ExtendedColorType::L8)
        }
        .map_err(failed)?;
        ImageFormat::Jpeg.mime()
    };
    Ok(Thumbnail { bytes, mime, width, height })
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_scales_the_longest_side_and_never_upscales() {
        assert_eq!(fit(2000, 1000, 256), (256, 128));
        assert_eq!(fit(1000, 2000, 1024), (512, 1024));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(12_000, 1, 256), (256, 1));
        assert_eq!(fit(u32::MAX, u32::MAX - 1, 7), (7, 7));
    }
}

//! Every input is generated here: images through the `image` encoders, hostile files by hand.

use std::io::Cursor;
use std::time::{Duration, Instant};

use ferry_imaging::{ImageFacts, ImageFormat, Limits, Refusal, Thumbnail, describe, thumbnail};
use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

// ------------------------------------------------------------------ builders

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
}

/// Few distinct colours, so the GIF encoder keeps an exact palette instead of quantising.
fn blocks(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        let shade = (((x / 64) + (y / 64)) % 8 * 32) as u8;
        Rgba([shade, 255 - shade, 64, 255])
    })
}

fn jpeg_of(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png_rgb(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png_rgba(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgba8)
        .unwrap();
    out
}

fn webp_of(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn gif_of(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    GifEncoder::new(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgba8)
        .unwrap();
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    chunk
}

/// One IFD entry, big-endian: tag, TIFF type, count, value bytes.
struct Entry(u16, u16, u32, Vec<u8>);

fn ascii(tag: u16, text: &str) -> Entry {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    Entry(tag, 2, bytes.len() as u32, bytes)
}

/// A big-endian TIFF structure: IFD0 (plus a pointer to the Exif IFD), the Exif IFD, then the
/// values too long to sit in their entries.
fn tiff(ifd0: Vec<Entry>, exif_ifd: Vec<Entry>) -> Vec<u8> {
    const POINTER_TAG: u16 = 0x8769;
    let ifd_len = |n: usize| 2 + 12 * n + 4;
    let ifd0_at = 8;
    let exif_at = ifd0_at + ifd_len(ifd0.len() + 1);
    let mut data_at = exif_at + ifd_len(exif_ifd.len());
    let mut data = Vec::new();
    let mut write_ifd = |out: &mut Vec<u8>, entries: &[Entry]| {
        out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for Entry(tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
            if value.len() <= 4 {
                let mut inline = value.clone();
                inline.resize(4, 0);
                out.extend_from_slice(&inline);
            } else {
                out.extend_from_slice(&(data_at as u32).to_be_bytes());
                data.extend_from_slice(value);
                data_at += value.len();
            }
        }
        out.extend_from_slice(&0u32.to_be_bytes());
    };
    let mut out = b"MM\0\x2a".to_vec();
    out.extend_from_slice(&(ifd0_at as u32).to_be_bytes());
    let mut ifd0 = ifd0;
    ifd0.push(Entry(POINTER_TAG, 4, 1, (exif_at as u32).to_be_bytes().to_vec()));
    write_ifd(&mut out, &ifd0);
    write_ifd(&mut out, &exif_ifd);
    out.extend_from_slice(&data);
    out
}

fn camera_exif() -> Vec<u8> {
    tiff(
        vec![ascii(0x010F, "  FerryCam\0"), ascii(0x0110, "Model 7"), Entry(0x0112, 3, 1, 6u16.to_be_bytes().to_vec())],
        vec![ascii(0x9003, "2024:05:17 14:03:22"), ascii(0x9011, "+02:00")],
    )
}

/// Puts an APP1 Exif segment right after SOI.
fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn decoded(thumb: &Thumbnail) -> DynamicImage {
    image::ImageReader::new(Cursor::new(&thumb.bytes)).with_guessed_format().unwrap().decode().unwrap()
}

fn check_thumbnails(bytes: &[u8], format: ImageFormat) {
    let limits = Limits::default();
    let facts = describe(bytes, &limits).unwrap();
    assert_eq!((facts.format, facts.width, facts.height), (format, 2000, 1000));
    for (side, expected) in [(256, (256, 128)), (1024, (1024, 512))] {
        let thumb = thumbnail(bytes, side, &limits).unwrap();
        assert_eq!((thumb.width, thumb.height), expected, "{format:?} at {side}");
        assert_eq!(thumb.mime, "image/jpeg", "{format:?} is opaque");
        let image = decoded(&thumb);
        assert_eq!((image.width(), image.height()), expected);
    }
}

fn refusal(bytes: &[u8]) -> (Refusal, Refusal) {
    let limits = Limits::default();
    (describe(bytes, &limits).unwrap_err(), thumbnail(bytes, 256, &limits).unwrap_err())
}

// ------------------------------------------------------------------ formats and sizes

#[test]
fn jpeg_is_described_and_thumbnailed() {
    check_thumbnails(&jpeg_of(&gradient(2000, 1000)), ImageFormat::Jpeg);
}

#[test]
fn png_is_described_and_thumbnailed() {
    check_thumbnails(&png_rgb(&gradient(2000, 1000)), ImageFormat::Png);
}

#[test]
fn webp_is_described_and_thumbnailed() {
    check_thumbnails(&webp_of(&gradient(2000, 1000)), ImageFormat::WebP);
}

#[test]
fn gif_is_described_and_thumbnailed() {
    check_thumbnails(&gif_of(&blocks(2000, 1000)), ImageFormat::Gif);
}

#[test]
fn small_images_are_not_upscaled() {
    let rgb = gradient(100, 50);
    let inputs =
        [jpeg_of(&rgb), png_rgb(&rgb), webp_of(&rgb), gif_of(&DynamicImage::ImageRgb8(rgb.clone()).to_rgba8())];
    for bytes in inputs {
        let thumb = thumbnail(&bytes, 256, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (100, 50));
        assert_eq!(decoded(&thumb).width(), 100);
    }
}

#[test]
fn portrait_images_scale_by_height() {
    let thumb = thumbnail(&png_rgb(&gradient(300, 900)), 300, &Limits::default()).unwrap();
    assert_eq!((thumb.width, thumb.height), (100, 300));
}

#[test]
fn plain_images_have_no_camera_facts() {
    let facts = describe(&png_rgb(&gradient(10, 20)), &Limits::default()).unwrap();
    assert_eq!(
        facts,
        ImageFacts {
            format: ImageFormat::Png,
            width: 10,
            height: 20,
            taken_at: None,
            camera_make: None,
            camera_model: None,
            orientation: None,
        }
    );
}

// ------------------------------------------------------------------ EXIF

/// Left half red, right half blue; stored landscape, orientation 6 (turn 90° clockwise).
fn rotated_camera_jpeg() -> Vec<u8> {
    let image = RgbImage::from_fn(64, 32, |x, _| if x < 32 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
    with_exif(&jpeg_of(&image), &camera_exif())
}

#[test]
fn exif_facts_are_read_from_jpeg() {
    let facts = describe(&rotated_camera_jpeg(), &Limits::default()).unwrap();
    assert_eq!(
        facts,
        ImageFacts {
            format: ImageFormat::Jpeg,
            width: 32,
            height: 64,
            taken_at: Some("2024-05-17T14:03:22+02:00".into()),
            camera_make: Some("FerryCam".into()),
            camera_model: Some("Model 7".into()),
            orientation: Some(6),
        }
    );
}

#[test]
fn exif_orientation_turns_the_thumbnail() {
    let thumb = thumbnail(&rotated_camera_jpeg(), 32, &Limits::default()).unwrap();
    assert_eq!((thumb.width, thumb.height), (16, 32));
    let image = decoded(&thumb).to_rgb8();
    // Turned clockwise, the stored left (red) half is now on top.
    let top = image.get_pixel(8, 4).0;
    let bottom = image.get_pixel(8, 28).0;
    assert!(top[0] > 200 && top[2] < 60, "top is {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is {bottom:?}");
}

#[test]
fn exif_falls_back_to_datetime_without_zone() {
    let exif = tiff(vec![ascii(0x0132, "2020:01:02 03:04:05"), ascii(0x0110, &"x".repeat(300))], vec![]);
    let facts = describe(&with_exif(&jpeg_of(&gradient(8, 8)), &exif), &Limits::default()).unwrap();
    assert_eq!(facts.taken_at.as_deref(), Some("2020-01-02T03:04:05"));
    assert_eq!(facts.camera_model.map(|m| m.len()), Some(100));
    assert_eq!((facts.width, facts.height, facts.orientation), (8, 8, None));
}

#[test]
fn broken_exif_does_not_refuse_the_image() {
    let jpeg = with_exif(&jpeg_of(&gradient(8, 4)), b"MM\0\x2a\xff\xff\xff\xff garbage");
    let facts = describe(&jpeg, &Limits::default()).unwrap();
    assert_eq!((facts.width, facts.height, facts.camera_make), (8, 4, None));
    assert!(thumbnail(&jpeg, 64, &Limits::default()).is_ok());
}

#[test]
fn exif_in_png_is_read() {
    let png = png_rgb(&gradient(40, 20));
    // eXIf goes after IHDR (8-byte signature + 25-byte chunk).
    let mut with_exif = png[..33].to_vec();
    with_exif.extend(png_chunk(b"eXIf", &camera_exif()));
    with_exif.extend_from_slice(&png[33..]);
    let facts = describe(&with_exif, &Limits::default()).unwrap();
    assert_eq!((facts.width, facts.height, facts.orientation), (20, 40, Some(6)));
    let thumb = thumbnail(&with_exif, 100, &Limits::default()).unwrap();
    assert_eq!((thumb.width, thumb.height), (20, 40));
}

// ------------------------------------------------------------------ output format

#[test]
fn transparent_png_gives_png_thumbnail() {
    let image = RgbaImage::from_fn(300, 200, |x, _| Rgba([10, 200, 30, if x < 150 { 0 } else { 255 }]));
    let thumb = thumbnail(&png_rgba(&image), 150, &Limits::default()).unwrap();
    assert_eq!((thumb.mime, thumb.width, thumb.height), ("image/png", 150, 100));
    assert!(thumb.bytes.starts_with(b"\x89PNG"));
    assert!(decoded(&thumb).color().has_alpha());
}

#[test]
fn opaque_images_give_jpeg_thumbnails() {
    let opaque_rgba = RgbaImage::from_fn(300, 200, |_, y| Rgba([10, 200, (y % 256) as u8, 255]));
    for bytes in [png_rgba(&opaque_rgba), png_rgb(&gradient(300, 200))] {
        let thumb = thumbnail(&bytes, 150, &Limits::default()).unwrap();
        assert_eq!((thumb.mime, thumb.width, thumb.height), ("image/jpeg", 150, 100));
        assert!(thumb.bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    }
}

// ------------------------------------------------------------------ hostile input

fn huge_png() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    let started = Instant::now();
    let huge = Refusal::TooLarge { width: 100_000, height: 100_000 };
    assert_eq!(refusal(&huge_png()), (huge.clone(), huge.clone()));
    assert_eq!(huge.code(), "dimensions_too_large");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn allocation_budget_is_checked_from_the_header() {
    // Raised dimension limits but a small allocation budget: refused before any decoder runs.
    let limits = Limits {
        max_width: u32::MAX,
        max_height: u32::MAX,
        max_pixels: u64::MAX,
        max_alloc_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    assert!(matches!(describe(&huge_png(), &limits), Err(Refusal::TooLarge { .. })));
    assert!(matches!(thumbnail(&huge_png(), 64, &limits), Err(Refusal::TooLarge { .. })));
}

#[test]
fn pixel_count_limit_applies() {
    let limits = Limits { max_pixels: 1_000, ..Limits::default() };
    let bytes = png_rgb(&gradient(50, 50));
    assert_eq!(describe(&bytes, &limits), Err(Refusal::TooLarge { width: 50, height: 50 }));
}

#[test]
fn gif_with_huge_screen_is_refused() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&65_535u16.to_le_bytes());
    gif.extend_from_slice(&65_535u16.to_le_bytes());
    gif.extend_from_slice(&[0, 0, 0]);
    // One 1x1 frame: descriptor, LZW code size, one data sub-block, terminator, trailer.
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
    let huge = Refusal::TooLarge { width: 65_535, height: 65_535 };
    assert_eq!(refusal(&gif), (huge.clone(), huge));
}

#[test]
fn gif_with_huge_first_frame_is_refused() {
    let mut gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
    assert!(matches!(refusal(&gif).1, Refusal::TooLarge { width: 65_535, .. }));
}

#[test]
fn webp_bomb_is_refused_from_its_header() {
    // VP8X canvas of 16M x 16M.
    let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
    webp.extend_from_slice(&10u32.to_le_bytes());
    webp.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    let size = (webp.len() - 8) as u32;
    webp[4..8].copy_from_slice(&size.to_le_bytes());
    assert!(matches!(refusal(&webp).0, Refusal::TooLarge { width: 16_777_216, .. }));
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    let mut jpeg = jpeg_of(&gradient(16, 16));
    // Rewrite the SOF0 dimensions to 65000 x 65000.
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    let huge = Refusal::TooLarge { width: 65_000, height: 65_000 };
    assert_eq!(refusal(&jpeg), (huge.clone(), huge));
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let jpeg = jpeg_of(&gradient(400, 300));
    let half = &jpeg[..jpeg.len() / 2];
    // The headers are whole, so describe still answers; the pixels are not.
    assert!(describe(half, &Limits::default()).is_ok());
    let refused = thumbnail(half, 256, &Limits::default()).unwrap_err();
    assert!(matches!(refused, Refusal::Corrupt { .. }), "{refused:?}");
    assert_eq!(refused.code(), "corrupt");
}

#[test]
fn every_truncation_is_refused() {
    let rgb = gradient(24, 16);
    let cases = [
        ("jpeg", jpeg_of(&rgb), 0),
        ("png", png_rgb(&rgb), 0),
        ("webp", webp_of(&rgb), 0),
        // The trailer byte after the first frame is not needed to show it.
        ("gif", gif_of(&blocks(24, 16)), 1),
    ];
    let limits = Limits::default();
    for (name, bytes, optional_tail) in cases {
        assert!(thumbnail(&bytes, 8, &limits).is_ok(), "{name} whole");
        for cut in 0..bytes.len() - optional_tail {
            let result = thumbnail(&bytes[..cut], 8, &limits);
            assert!(result.is_err(), "{name} cut at {cut} of {} was accepted", bytes.len());
        }
    }
}

#[test]
fn damaged_bytes_never_escape_as_panics() {
    let rgb = gradient(24, 16);
    let limits = Limits::default();
    for bytes in [jpeg_of(&rgb), png_rgb(&rgb), webp_of(&rgb), gif_of(&blocks(24, 16))] {
        for at in (0..bytes.len()).step_by(3) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5A;
            let _ = describe(&damaged, &limits);
            if let Ok(thumb) = thumbnail(&damaged, 8, &limits) {
                assert!(thumb.width <= 8 && thumb.height <= 8 && !thumb.bytes.is_empty());
            }
        }
    }
}

#[test]
fn random_bytes_are_not_an_image() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_eq!(refusal(&noise), (Refusal::NotAnImage, Refusal::NotAnImage));
    assert_eq!(refusal(b"hello, world"), (Refusal::NotAnImage, Refusal::NotAnImage));
}

#[test]
fn empty_input_is_not_an_image() {
    assert_eq!(refusal(&[]), (Refusal::NotAnImage, Refusal::NotAnImage));
    assert_eq!(Refusal::NotAnImage.code(), "not_an_image");
}

#[test]
fn other_image_formats_are_unsupported() {
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 12]);
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&[0; 40]);
    let mut heic = b"\0\0\0\x18ftypheic".to_vec();
    heic.extend_from_slice(&[0; 12]);
    for (bytes, format) in [
        (bmp, "BMP"),
        (b"II*\0\x08\0\0\0".to_vec(), "TIFF"),
        (b"MM\0*\0\0\0\x08".to_vec(), "TIFF"),
        (heic, "HEIF"),
        (b"<?xml version=\"1.0\"?>\n<svg xmlns=\"x\"/>".to_vec(), "SVG"),
    ] {
        let expected = Refusal::Unsupported { format: format.into() };
        assert_eq!(refusal(&bytes), (expected.clone(), expected.clone()));
        assert_eq!(expected.code(), "unsupported_format");
        assert!(expected.to_string().contains(format));
    }
}

#[test]
fn input_over_the_limit_is_refused_before_parsing() {
    let bytes = png_rgb(&gradient(64, 64));
    let limits = Limits { max_input_bytes: 100, ..Limits::default() };
    let expected = Refusal::InputTooLarge { bytes: bytes.len() as u64, limit: 100 };
    assert_eq!(describe(&bytes, &limits), Err(expected.clone()));
    assert_eq!(thumbnail(&bytes, 32, &limits), Err(expected.clone()));
    assert_eq!(expected.code(), "input_too_large");
}

#[test]
fn garbage_after_a_signature_is_corrupt() {
    for bytes in [
        b"\x89PNG\r\n\x1a\nnot a chunk at all".to_vec(),
        vec![0xFF, 0xD8, 0xFF, 0x00, 0x01],
        b"GIF89a\x01".to_vec(),
        b"RIFF\x04\0\0\0WEBP".to_vec(),
    ] {
        let (described, thumbnailed) = refusal(&bytes);
        assert!(matches!(described, Refusal::Corrupt { .. }), "{bytes:?}: {described:?}");
        assert!(matches!(thumbnailed, Refusal::Corrupt { .. }), "{bytes:?}: {thumbnailed:?}");
    }
}

#[test]
fn zero_thumbnail_size_is_refused() {
    let bytes = png_rgb(&gradient(4, 4));
    let refused = thumbnail(&bytes, 0, &Limits::default()).unwrap_err();
    assert_eq!((refused.clone(), refused.code()), (Refusal::InvalidThumbnailSize, "invalid_thumbnail_size"));
}

// ------------------------------------------------------------------ small API pieces

#[test]
fn mime_types_round_trip() {
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
        assert_eq!(ImageFormat::from_mime(format.mime()), Some(format));
    }
    assert_eq!(ImageFormat::from_mime("IMAGE/JPG; q=1"), Some(ImageFormat::Jpeg));
    assert_eq!(ImageFormat::from_mime("image/bmp"), None);
    assert_eq!(ImageFormat::from_mime(""), None);
}

#[test]
fn default_limits_are_as_documented() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 64_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
            max_input_bytes: 64 * 1024 * 1024,
        }
    );
}

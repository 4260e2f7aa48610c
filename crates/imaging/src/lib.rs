//! Describes and thumbnails uploaded images (JPEG, PNG, WebP, GIF) from byte slices the worker
//! read from the blob store, refusing hostile or broken input with a stable reason instead of
//! panicking or allocating without bound.

mod exif_meta;
mod header;
mod render;
mod sniff;

use std::panic::{self, AssertUnwindSafe};

/// Resource ceilings for one image. Checked against the header before any pixel buffer exists,
/// and handed to the decoder as a backstop in case the header lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// Ceiling for the decoded pixel buffer and the decoder's own allocations.
    pub max_alloc_bytes: u64,
    pub max_input_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 64_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
            max_input_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The formats Ferry accepts, as found from the file's magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    WebP,
    Gif,
}

impl ImageFormat {
    pub fn mime(&self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::WebP => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }

    /// Parses a media type such as `image/jpeg` or `image/png; charset=binary` (case-insensitive,
    /// parameters ignored). Only for callers mapping declared types; detection never uses it.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or_default().trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        if is("image/jpeg") || is("image/jpg") || is("image/pjpeg") {
            Some(ImageFormat::Jpeg)
        } else if is("image/png") {
            Some(ImageFormat::Png)
        } else if is("image/webp") {
            Some(ImageFormat::WebP)
        } else if is("image/gif") {
            Some(ImageFormat::Gif)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::WebP => "WebP",
            ImageFormat::Gif => "GIF",
        }
    }
}

/// What `describe` learns from an image's headers and EXIF block.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFacts {
    pub format: ImageFormat,
    /// As displayed: swapped with `height` when the EXIF orientation turns the picture (5-8).
    pub width: u32,
    pub height: u32,
    /// EXIF DateTimeOriginal (else DateTime) as `YYYY-MM-DDTHH:MM:SS`, followed by `+HH:MM` when
    /// the matching OffsetTime tag gives the zone.
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    /// EXIF orientation, only when it is a valid value (1-8).
    pub orientation: Option<u16>,
}

/// An encoded thumbnail: JPEG for opaque pictures, PNG when any pixel is transparent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Why an input was not described or thumbnailed. `code()` is stable for APIs and metrics;
/// the Display text is meant for people.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Refusal {
    #[error("the file is not an image in any format we recognise")]
    NotAnImage,
    #[error("{format} is not supported; send JPEG, PNG, WebP or GIF")]
    Unsupported { format: String },
    #[error("the image is {width} x {height} pixels, which is more than we accept")]
    TooLarge { width: u32, height: u32 },
    #[error("the file is {bytes} bytes, over the limit of {limit} bytes")]
    InputTooLarge { bytes: u64, limit: u64 },
    #[error("the image is damaged or incomplete: {reason}")]
    Corrupt { reason: String },
    #[error("a thumbnail must be at least 1 pixel on its longest side")]
    InvalidThumbnailSize,
    #[error("the thumbnail could not be encoded: {reason}")]
    EncodeFailed { reason: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAnImage => "not_an_image",
            Refusal::Unsupported { .. } => "unsupported_format",
            Refusal::TooLarge { .. } => "dimensions_too_large",
            Refusal::InputTooLarge { .. } => "input_too_large",
            Refusal::Corrupt { .. } => "corrupt",
            Refusal::InvalidThumbnailSize => "invalid_thumbnail_size",
            Refusal::EncodeFailed { .. } => "encode_failed",
        }
    }

    fn corrupt(reason: impl Into<String>) -> Self {
        Refusal::Corrupt { reason: reason.into() }
    }
}

/// Reads the format, dimensions and EXIF facts from the headers; never decodes pixels, so a
/// well-formed header on truncated pixel data still describes (`thumbnail` refuses it).
pub fn describe(bytes: &[u8], limits: &Limits) -> Result<ImageFacts, Refusal> {
    guarded(|| {
        let header = header::inspect(bytes, limits)?;
        let meta = header.exif.map(exif_meta::read).unwrap_or_default();
        let turned = meta.orientation.is_some_and(|o| (5..=8).contains(&o));
        let (width, height) = if turned { (header.height, header.width) } else { (header.width, header.height) };
        Ok(ImageFacts {
            format: header.format,
            width,
            height,
            taken_at: meta.taken_at,
            camera_make: meta.camera_make,
            camera_model: meta.camera_model,
            orientation: meta.orientation,
        })
    })
}

/// Decodes the image (the first frame of a GIF), turns it upright per EXIF and scales it so its
/// longest side is `longest_side`; smaller images keep their size.
pub fn thumbnail(bytes: &[u8], longest_side: u32, limits: &Limits) -> Result<Thumbnail, Refusal> {
    if longest_side == 0 {
        return Err(Refusal::InvalidThumbnailSize);
    }
    guarded(|| {
        let header = header::inspect(bytes, limits)?;
        // Decoders fill missing data with grey rather than fail, so completeness is checked
        // on the structure first.
        header::ensure_complete(bytes, &header)?;
        let orientation = header.exif.and_then(|exif| exif_meta::read(exif).orientation);
        render::thumbnail(bytes, &header, orientation, longest_side, limits)
    })
}

/// Last line of defence: a panic inside a decoder must not take the worker down.
fn guarded<T>(work: impl FnOnce() -> Result<T, Refusal>) -> Result<T, Refusal> {
    panic::catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(Refusal::corrupt("the decoder failed on malformed data")))
}

//! Ingest: bytes in, an upright RGB working image out, or a clear refusal.
//!
//! Order matters for safety and speed: recognise the format from the bytes, read the
//! dimensions from the header and refuse oversized images before allocating their pixels,
//! decode large JPEGs straight to a reduced size (DCT-domain scaling), shrink what is still
//! over the working size with the SIMD resizer, and only then apply the EXIF orientation.

mod decoded;
mod gif;
mod jpeg;
mod orient;
mod png;
mod sniff;
mod webp;

use decoded::fit_within;
pub use decoded::IngestOptions;
pub use jpeg::simd as jpeg_simd;
pub use orient::apply as apply_orientation;
pub use sniff::{sniff, Format, Formats};

use serde::Serialize;

use crate::error::PipelineError;
use crate::image::RgbImage;

/// What the ingest stage knows about the input, reported with every verdict.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    pub format: Format,
    /// Size in original pixels, after the EXIF orientation was applied (if it was).
    pub width: u32,
    pub height: u32,
    /// The EXIF orientation tag found (1 = upright or none).
    pub exif_orientation: u16,
    pub orientation_applied: bool,
    /// Size of the working image the models saw.
    pub working_width: u32,
    pub working_height: u32,
}

/// An upright working image and how it maps back to original pixels.
#[derive(Debug)]
pub struct Ingested {
    pub image: RgbImage,
    pub info: ImageInfo,
    /// The upright image at full resolution, kept when `image` was reduced from it (see
    /// [`IngestOptions::full_resolution_pixels`]).
    pub full: Option<RgbImage>,
}

impl Ingested {
    /// Working-image pixels per original pixel, horizontally and vertically.
    pub fn scale(&self) -> (f32, f32) {
        (
            self.info.working_width as f32 / self.info.width as f32,
            self.info.working_height as f32 / self.info.height as f32,
        )
    }

    /// The image the judges crop from (full resolution when it was kept) and its pixels per
    /// original pixel.
    pub fn for_judges(&self) -> (&RgbImage, (f32, f32)) {
        match &self.full {
            Some(full) => (full, (1.0, 1.0)),
            None => (&self.image, self.scale()),
        }
    }
}

pub fn ingest(bytes: &[u8], opts: &IngestOptions) -> Result<Ingested, PipelineError> {
    let format = sniff(bytes)?;
    if !opts.formats.contains(format) {
        return Err(opts.formats.refuse(format.name()));
    }
    let decoded = match format {
        Format::Jpeg => jpeg::decode(bytes, opts)?,
        Format::Png => png::decode(bytes, opts)?,
        Format::Webp => webp::decode(bytes, opts)?,
        Format::Gif => gif::decode(bytes, opts)?,
    };
    let (w, h) = (decoded.width, decoded.height);
    let mut image = decoded.image;
    let mut full = None;
    let (tw, th) = fit_within(w, h, opts.max_side);
    if image.width > tw || image.height > th {
        let working = crate::imageops::downscale(&image, tw, th);
        if (image.width, image.height) == (w, h) {
            full = Some(image);
        }
        image = working;
    }
    let orientation = decoded.orientation;
    let applied = opts.auto_rotate && orientation > 1;
    let (mut ow, mut oh) = (w, h);
    if applied {
        image = orient::apply(image, orientation);
        full = full.map(|f| orient::apply(f, orientation));
        if orientation >= 5 {
            (ow, oh) = (h, w);
        }
    }
    let info = ImageInfo {
        format,
        width: ow,
        height: oh,
        exif_orientation: orientation,
        orientation_applied: applied,
        working_width: image.width,
        working_height: image.height,
    };
    Ok(Ingested { image, info, full })
}

/// Pixels the image's header declares (width x height), read without decoding: what a
/// server reserves from its decode budget before decoding. Errors are the ones decoding
/// would give for a bad header.
pub fn header_pixels(bytes: &[u8]) -> Result<u64, PipelineError> {
    let (w, h) = match sniff(bytes)? {
        Format::Jpeg => jpeg::dimensions(bytes)?,
        Format::Png => png::dimensions(bytes)?,
        Format::Webp => webp::dimensions(bytes)?,
        Format::Gif => gif::dimensions(bytes)?,
    };
    Ok(w as u64 * h as u64)
}

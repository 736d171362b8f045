//! WebP (lossy, lossless, with alpha; the first frame of an animation): what browsers and
//! Android produce by default from a canvas or camera intent.

use std::io::Cursor;

use image_webp::WebPDecoder;

use super::decoded::{check_pixels, Decoded, IngestOptions};
use super::orient;
use super::png::composite_over_white;
use crate::error::PipelineError;
use crate::image::RgbImage;

fn corrupt(reason: impl ToString) -> PipelineError {
    PipelineError::CorruptImage {
        format: "WebP",
        reason: reason.to_string(),
    }
}

pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PipelineError> {
    let dec = WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    Ok(dec.dimensions())
}

pub(super) fn decode(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    let mut dec = WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (w, h) = dec.dimensions();
    check_pixels(w, h, opts)?;
    // The EXIF chunk is read only if it is small: its declared size is allocated first.
    dec.set_memory_limit(orient::MAX_EXIF_BYTES);
    let orientation = dec
        .exif_metadata()
        .ok()
        .flatten()
        .map(|exif| orient::exif_orientation(&exif))
        .unwrap_or(1);
    dec.set_memory_limit((opts.max_pixels as usize).saturating_mul(4));
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| corrupt("image too large for this platform"))?;
    let mut buf = vec![0u8; size];
    dec.read_image(&mut buf).map_err(corrupt)?;
    let rgb = if dec.has_alpha() {
        composite_over_white(&buf)
    } else {
        buf
    };
    Ok(Decoded {
        image: RgbImage::new(w, h, rgb),
        width: w,
        height: h,
        orientation,
    })
}

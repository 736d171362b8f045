//! What every decoder shares: the ingest options, a decoder's raw output, and the checks
//! each makes on the header before it allocates.

use super::sniff::Formats;
use crate::error::PipelineError;
use crate::image::RgbImage;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Refuse images with more pixels than this, from the header, before decoding.
    pub max_pixels: u64,
    /// Decode and keep the image at most this many pixels on its longer side. Faces are
    /// judged on an 80x80 crop, so nothing above this helps; photos beyond it are reduced
    /// (in the DCT domain for JPEG) and the results mapped back to original pixels.
    pub max_side: u32,
    /// Apply the EXIF orientation tag (JCV's `autoRotate`).
    pub auto_rotate: bool,
    /// Formats accepted; others are refused before decoding.
    pub formats: Formats,
    /// Images of at most this many pixels are decoded at full resolution even when they
    /// are reduced to `max_side`, and the full-resolution pixels are kept for the judges:
    /// their 80x80 crops then come from the pixels the reference pipeline crops from, not
    /// from the reduced image (3 B a pixel, held under the server's decode budget). Larger
    /// JPEGs are decoded straight to a reduced size and judged on it.
    pub full_resolution_pixels: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_side: 2048,
            auto_rotate: true,
            formats: Formats::ALL,
            // 4096 x 4096: every 12-Mpx phone photo (4032 x 3024).
            full_resolution_pixels: 4096 * 4096,
        }
    }
}

/// Raw decoder output before reduction and rotation.
pub(crate) struct Decoded {
    pub image: RgbImage,
    /// Full size from the header, as stored (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: u16,
}

/// The size of a `w` x `h` image shrunk (never enlarged) to fit `max_side`.
pub(crate) fn fit_within(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side {
        return (w, h);
    }
    let s = max_side as f64 / long as f64;
    (
        ((w as f64 * s).round() as u32).max(1),
        ((h as f64 * s).round() as u32).max(1),
    )
}

pub(crate) fn check_pixels(w: u32, h: u32, opts: &IngestOptions) -> Result<(), PipelineError> {
    if w == 0 || h == 0 {
        return Err(PipelineError::CorruptImage {
            format: "image",
            reason: "the header gives a zero dimension".into(),
        });
    }
    if w as u64 * h as u64 > opts.max_pixels {
        return Err(PipelineError::ImageTooLarge {
            width: w,
            height: h,
            limit: opts.max_pixels,
        });
    }
    Ok(())
}

pub(crate) fn grayscale_refusal() -> PipelineError {
    PipelineError::UnsupportedColour(
        "grayscale images are refused: the anti-spoof models judge colour, and a grey capture \
         looks like a print to them; send a colour image"
            .into(),
    )
}

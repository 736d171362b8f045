//! GIF, first frame only (JCV documents it so): placed on the logical screen, with what it
//! does not cover or leaves transparent shown white.

use std::io::Cursor;
use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, MemoryLimit};

use super::decoded::{check_pixels, Decoded, IngestOptions};
use super::png::composite_over_white;
use crate::error::PipelineError;
use crate::image::RgbImage;

fn corrupt(reason: impl ToString) -> PipelineError {
    PipelineError::CorruptImage {
        format: "GIF",
        reason: reason.to_string(),
    }
}

pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PipelineError> {
    let dec = DecodeOptions::new()
        .read_info(Cursor::new(bytes))
        .map_err(corrupt)?;
    Ok((dec.width() as u32, dec.height() as u32))
}

pub(super) fn decode(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    let cap = NonZeroU64::new(opts.max_pixels.saturating_mul(4).max(1)).expect("not zero");
    options.set_memory_limit(MemoryLimit::Bytes(cap));
    let mut dec = options.read_info(Cursor::new(bytes)).map_err(corrupt)?;
    let (w, h) = (dec.width() as u32, dec.height() as u32);
    check_pixels(w, h, opts)?;
    let frame = dec
        .read_next_frame()
        .map_err(corrupt)?
        .ok_or_else(|| corrupt("no frame"))?;
    // The screen starts transparent: white once composited, like the uncovered parts.
    let mut screen = vec![0u8; w as usize * h as usize * 4];
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (left, top) = (frame.left as usize, frame.top as usize);
    for row in 0..fh.min((h as usize).saturating_sub(top)) {
        let visible = fw.min((w as usize).saturating_sub(left));
        let src = &frame.buffer[row * fw * 4..(row * fw + visible) * 4];
        let at = ((top + row) * w as usize + left) * 4;
        screen[at..at + visible * 4].copy_from_slice(src);
    }
    Ok(Decoded {
        image: RgbImage::new(w, h, composite_over_white(&screen)),
        width: w,
        height: h,
        orientation: 1,
    })
}

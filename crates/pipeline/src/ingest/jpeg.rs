use std::io::Cursor;

use jpeg_decoder::{Decoder, PixelFormat};

use super::{check_pixels, fit_within, grayscale_refusal, orient, Decoded, IngestOptions};
use crate::image::RgbImage;
use crate::PipelineError;

fn corrupt(reason: impl ToString) -> PipelineError {
    PipelineError::CorruptImage {
        format: "JPEG",
        reason: reason.to_string(),
    }
}

pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PipelineError> {
    let mut dec = Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(corrupt)?;
    let info = dec.info().ok_or_else(|| corrupt("no frame header"))?;
    Ok((info.width as u32, info.height as u32))
}

pub(super) fn decode(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    if !has_end_of_image(bytes) {
        // libjpeg and jpeg-decoder both fill a cut-off scan with grey and carry on; a
        // half-grey face must not be scored, so a JPEG without its end marker is refused.
        return Err(corrupt("the file is truncated (no end-of-image marker)"));
    }
    let mut dec = Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(corrupt)?;
    let info = dec.info().ok_or_else(|| corrupt("no frame header"))?;
    let (w, h) = (info.width as u32, info.height as u32);
    check_pixels(w, h, opts)?;
    if matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::L16) {
        return Err(grayscale_refusal());
    }
    // Ask the decoder for the smallest 1/8..8/8 IDCT scale that still covers the working size.
    let (tw, th) = fit_within(w, h, opts.max_side);
    if (tw, th) != (w, h) {
        dec.scale(tw as u16, th as u16).map_err(corrupt)?;
    }
    dec.set_max_decoding_buffer_size((opts.max_pixels as usize).saturating_mul(4));
    let pixels = dec.decode().map_err(corrupt)?;
    let info = dec.info().ok_or_else(|| corrupt("no frame header"))?;
    let (dw, dh) = (info.width as u32, info.height as u32);
    let rgb = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::CMYK32 => cmyk_to_rgb(&pixels),
        PixelFormat::L8 | PixelFormat::L16 => return Err(grayscale_refusal()),
    };
    if rgb.len() != dw as usize * dh as usize * 3 {
        return Err(corrupt("decoded size does not match the header"));
    }
    let orientation = dec.exif_data().map(orient::exif_orientation).unwrap_or(1);
    Ok(Decoded {
        image: RgbImage::new(dw, dh, rgb),
        width: w,
        height: h,
        orientation,
    })
}

/// jpeg-decoder hands back CMYK with Adobe's inversion already undone (0 = no ink), so the
/// naive conversion is the right one.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let k = 255 - p[3] as u32;
        for c in &p[..3] {
            out.push(((255 - *c as u32) * k / 255) as u8);
        }
    }
    out
}

/// A complete JPEG ends with FF D9, possibly followed by padding or trailing junk that some
/// cameras append; look for it near the end.
fn has_end_of_image(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

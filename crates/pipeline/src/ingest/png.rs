use std::io::Cursor;

use png::{ColorType, Decoder, Limits, Transformations};

use super::decoded::{check_pixels, grayscale_refusal, Decoded, IngestOptions};
use super::orient;
use crate::error::PipelineError;
use crate::image::RgbImage;

fn corrupt(reason: impl ToString) -> PipelineError {
    PipelineError::CorruptImage {
        format: "PNG",
        reason: reason.to_string(),
    }
}

/// A decoder that inflates no metadata: colour profiles (iCCP) and compressed text
/// (zTXt, iTXt) are zlib streams that can inflate a thousandfold, and facelive uses
/// neither. The eXIf chunk is not compressed; its size is the file's.
fn decoder(bytes: &[u8], limits: Limits) -> Decoder<Cursor<&[u8]>> {
    let mut dec = Decoder::new_with_limits(Cursor::new(bytes), limits);
    dec.set_ignore_iccp_chunk(true);
    dec.set_ignore_text_chunk(true);
    dec
}

pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PipelineError> {
    let reader = decoder(bytes, Limits::default())
        .read_info()
        .map_err(corrupt)?;
    Ok((reader.info().width, reader.info().height))
}

pub(super) fn decode(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    // The decoder's own allocation cap backs up the header check below.
    let limits = Limits {
        bytes: (opts.max_pixels as usize).saturating_mul(8),
    };
    let mut dec = decoder(bytes, limits);
    dec.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(corrupt)?;
    let (w, h) = (reader.info().width, reader.info().height);
    check_pixels(w, h, opts)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .map(orient::exif_orientation)
        .unwrap_or(1);
    let (colour, _) = reader.output_color_type();
    if matches!(colour, ColorType::Grayscale | ColorType::GrayscaleAlpha) {
        return Err(grayscale_refusal());
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| corrupt("image too large for this platform"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    buf.truncate(frame.buffer_size());
    let rgb = match frame.color_type {
        ColorType::Rgb => buf,
        ColorType::Rgba => composite_over_white(&buf),
        other => return Err(corrupt(format!("unexpected colour type {other:?}"))),
    };
    Ok(Decoded {
        image: RgbImage::new(w, h, rgb),
        width: w,
        height: h,
        orientation,
    })
}

/// Transparent pixels are shown as an image viewer on a white page would show them; RGB
/// under alpha 0 is often garbage and must not reach the models.
pub(super) fn composite_over_white(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for p in rgba.chunks_exact(4) {
        let a = p[3] as u32;
        for c in &p[..3] {
            out.push(((*c as u32 * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

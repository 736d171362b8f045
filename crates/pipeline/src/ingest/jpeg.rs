use std::borrow::Cow;
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
    let guarded = with_scan_sentinels(bytes)?;
    let mut dec = Decoder::new(Cursor::new(&guarded[..]));
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
    let pixels = dec.decode().map_err(|e| match e {
        jpeg_decoder::Error::Format(_) if guarded.len() != bytes.len() => {
            corrupt(format!("scan data is missing or damaged ({e})"))
        }
        e => corrupt(e),
    })?;
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

/// Fill bytes that read as one-bits, more than the decoder's 8-byte look-ahead.
const SENTINEL: [u8; 32] = {
    let mut fill = [0u8; 32];
    let mut k = 0;
    while k < fill.len() {
        fill[k] = 0xFF;
        k += 2;
    }
    fill
};

/// The file with [`SENTINEL`] put before the marker that ends each scan, or a refusal
/// when the scans the file declares stop before every coefficient is complete.
///
/// A file cut short and given its end marker back decodes without complaint: at a marker
/// the decoder feeds zero bits to the MCUs still due, which decode as flat grey. One-bits
/// instead never form a Huffman code (codes of all ones are forbidden), so a scan that runs
/// out of data now fails, while a complete scan only looks ahead into the fill and stops.
/// Progressive refinement scans read raw bits, which no fill can catch: there the missing
/// later scans give the cut away.
fn with_scan_sentinels(bytes: &[u8]) -> Result<Cow<'_, [u8]>, PipelineError> {
    let layout = scan_layout(bytes);
    if layout.reached_end && !layout.coverage.complete() {
        return Err(corrupt(
            "scan data is missing: the scans end before every coefficient is complete",
        ));
    }
    if layout.ends.is_empty() {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len() + layout.ends.len() * SENTINEL.len());
    let mut from = 0;
    for end in layout.ends {
        out.extend_from_slice(&bytes[from..end]);
        out.extend_from_slice(&SENTINEL);
        from = end;
    }
    out.extend_from_slice(&bytes[from..]);
    Ok(Cow::Owned(out))
}

#[derive(Default)]
struct ScanLayout {
    /// Offsets of the markers that end each scan's entropy-coded data.
    ends: Vec<usize>,
    coverage: Coverage,
    /// The walk reached the end-of-image marker (else the decoder judges the structure).
    reached_end: bool,
}

/// Which components and DCT coefficients the scans have brought to full precision.
#[derive(Default)]
struct Coverage {
    /// Component id and, per coefficient, whether a scan with no bits left (Al = 0)
    /// covered it.
    components: Vec<(u8, [bool; 64])>,
}

impl Coverage {
    fn frame(&mut self, segment: &[u8]) {
        let count = segment.get(5).copied().unwrap_or(0) as usize;
        self.components = (0..count)
            .filter_map(|c| segment.get(6 + 3 * c).map(|&id| (id, [false; 64])))
            .collect();
    }

    fn scan(&mut self, segment: &[u8]) {
        let count = segment.first().copied().unwrap_or(0) as usize;
        let tail = 1 + 2 * count;
        let (Some(&ss), Some(&se), Some(&a)) = (
            segment.get(tail),
            segment.get(tail + 1),
            segment.get(tail + 2),
        ) else {
            return;
        };
        if a & 0x0F != 0 {
            return;
        }
        let ids: Vec<u8> = (0..count)
            .filter_map(|c| segment.get(1 + 2 * c))
            .copied()
            .collect();
        for (id, done) in &mut self.components {
            if ids.contains(id) {
                for k in ss.min(63)..=se.min(63) {
                    done[k as usize] = true;
                }
            }
        }
    }

    fn complete(&self) -> bool {
        self.components
            .iter()
            .all(|(_, done)| done.iter().all(|&d| d))
    }
}

/// The scans of a JPEG, found by walking its segments (lengths skip the headers, whose
/// bytes may look like markers).
fn scan_layout(bytes: &[u8]) -> ScanLayout {
    let mut layout = ScanLayout::default();
    let mut i = 2;
    while i + 2 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1,
            0xD9 => {
                layout.reached_end = true;
                break;
            }
            0x01 | 0xD0..=0xD7 => i += 2,
            _ if i + 4 > bytes.len() => break,
            _ => {
                // The length counts its own two bytes: less is malformed, for the decoder
                // to refuse (found by the ingest fuzz target).
                let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
                if len < 2 {
                    break;
                }
                let segment = &bytes[(i + 4).min(bytes.len())..(i + 2 + len).min(bytes.len())];
                i += 2 + len;
                match marker {
                    0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                        layout.coverage.frame(segment)
                    }
                    0xDA => {
                        layout.coverage.scan(segment);
                        let Some(end) = entropy_end(bytes, i) else {
                            break;
                        };
                        layout.ends.push(end);
                        i = end;
                    }
                    _ => {}
                }
            }
        }
    }
    layout
}
/// Where the entropy-coded data starting at `i` ends: the first byte of the marker (with
/// any fill bytes before it) that is neither a stuffed `FF 00` nor a restart marker.
fn entropy_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i < bytes.len() {
        i += memchr::memchr(0xFF, &bytes[i..])?;
        let mut j = i + 1;
        while j < bytes.len() && bytes[j] == 0xFF {
            j += 1;
        }
        match bytes.get(j) {
            None => return None,
            Some(0x00 | 0xD0..=0xD7) => i = j + 1,
            Some(_) => return Some(i),
        }
    }
    None
}

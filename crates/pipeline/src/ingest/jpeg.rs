//! JPEG through libjpeg-turbo's decoder (the `mozjpeg` crate builds it from source and
//! links it statically), the decoder OpenCV uses: the reference pipeline's pixels exactly,
//! so scores agree with it, and about twice as fast as the pure-Rust decoders tried
//! (docs/BENCHMARKS.md).
//!
//! libjpeg reports damage as warnings and fills what it lost with grey; a grey half-face
//! must not be scored, so the warnings that mean lost image data end the decode here.

use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Decompress, Marker};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use super::decoded::{check_pixels, fit_within, grayscale_refusal, Decoded, IngestOptions};
use super::orient;
use crate::error::PipelineError;
use crate::image::RgbImage;

extern "C" {
    // libjpeg-turbo's own probe (jsimd.c): nonzero when its SIMD inverse DCT was compiled
    // in and this CPU runs it.
    fn jsimd_can_idct_islow() -> c_int;
}

/// Whether JPEG decoding runs libjpeg-turbo's SIMD code: the build adds it only when
/// `nasm` is installed, and without it decoding takes about twice as long
/// (docs/BENCHMARKS.md); the build only warns, so benchmarks and CI ask here.
pub fn simd() -> bool {
    // SAFETY: a C function of the linked libjpeg-turbo without arguments; it reads the CPU's
    // features and the JSIMD_* environment variables once and returns an int.
    unsafe { jsimd_can_idct_islow() != 0 }
}

fn corrupt(reason: impl ToString) -> PipelineError {
    PipelineError::CorruptImage {
        format: "JPEG",
        reason: reason.to_string(),
    }
}

pub(super) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PipelineError> {
    libjpeg(|| {
        let dec = Decompress::with_err(strict_errors())
            .from_mem(bytes)
            .map_err(corrupt)?;
        Ok((dec.width() as u32, dec.height() as u32))
    })
}

pub(super) fn decode(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    if !has_end_of_image(bytes) {
        // libjpeg fills a cut-off scan with grey and carries on; a JPEG without its end
        // marker is refused before it starts.
        return Err(corrupt("the file is truncated (no end-of-image marker)"));
    }
    check_scans(bytes)?;
    libjpeg(|| decode_pixels(bytes, opts))
}

fn decode_pixels(bytes: &[u8], opts: &IngestOptions) -> Result<Decoded, PipelineError> {
    let mut dec = Decompress::builder()
        .with_markers(&[Marker::APP(1), Marker::APP(14)])
        .with_err(strict_errors())
        .from_mem(bytes)
        .map_err(corrupt)?;
    let (w, h) = (dec.width() as u32, dec.height() as u32);
    check_pixels(w, h, opts)?;
    let stored = dec.color_space();
    if stored == ColorSpace::JCS_GRAYSCALE {
        return Err(grayscale_refusal());
    }
    dec.scale(idct_eighths(w, h, opts));
    let orientation = dec
        .markers()
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .map(orient::exif_orientation)
        .unwrap_or(1);
    let cmyk = matches!(stored, ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    // Photoshop, the usual source of CMYK JPEGs, stores the channels inverted and says so
    // in its APP14 "Adobe" segment.
    let inverted = cmyk && dec.markers().any(|m| m.data.starts_with(b"Adobe"));
    let mut started = if cmyk {
        dec.to_colorspace(ColorSpace::JCS_CMYK)
    } else {
        dec.rgb()
    }
    .map_err(corrupt)?;
    let (dw, dh) = (started.width() as u32, started.height() as u32);
    let pixels = started.read_scanlines::<u8>().map_err(corrupt)?;
    started.finish().map_err(corrupt)?;
    let rgb = if cmyk {
        cmyk_to_rgb(&pixels, inverted)
    } else {
        pixels
    };
    if rgb.len() != dw as usize * dh as usize * 3 {
        return Err(corrupt("decoded size does not match the header"));
    }
    Ok(Decoded {
        image: RgbImage::new(dw, dh, rgb),
        width: w,
        height: h,
        orientation,
    })
}

/// The IDCT scale, in eighths: full size for images whose full-resolution pixels the
/// judges keep, else the smallest 1/8, 1/4 or 1/2 that still covers the working size.
fn idct_eighths(w: u32, h: u32, opts: &IngestOptions) -> u8 {
    if w as u64 * h as u64 <= opts.full_resolution_pixels {
        return 8;
    }
    let (tw, th) = fit_within(w, h, opts.max_side);
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| w * n as u32 >= tw * 8 && h * n as u32 >= th * 8)
        .unwrap_or(8)
}

/// Runs libjpeg work, turning the unwind its error handlers start into a refusal. Any other
/// panic is a bug, not a bad file, and goes on unwinding (the server answers it as an
/// internal error).
fn libjpeg<T>(work: impl FnOnce() -> Result<T, PipelineError>) -> Result<T, PipelineError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => match payload.downcast::<LibjpegError>() {
            Ok(error) => Err(corrupt(error.0)),
            Err(other) => resume_unwind(other),
        },
    }
}

/// What libjpeg said when it gave up (its own message text: no image bytes).
struct LibjpegError(String);

/// Warnings after which part of the image is grey fill, not pixels.
const DAMAGE: [c_int; 4] = [
    mozjpeg_sys::JWRN_HIT_MARKER,
    mozjpeg_sys::JWRN_HUFF_BAD_CODE,
    mozjpeg_sys::JWRN_JPEG_EOF,
    mozjpeg_sys::JWRN_MUST_RESYNC,
];

/// libjpeg's standard error manager, with errors and damage warnings unwinding (through
/// C frames built with -fexceptions, the `mozjpeg` crate's documented way) to [`libjpeg`].
fn strict_errors() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of the struct it is given, which is how
    // libjpeg documents making an error manager; all-zero is a valid value before that.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a valid, exclusively borrowed error manager for it to fill.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(fail);
    err.emit_message = Some(warn);
    err
}

extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(LibjpegError(message(cinfo))))
}

extern "C-unwind" fn warn(cinfo: &mut jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg calls this with the error manager it was created with still set.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && DAMAGE.contains(&code) {
        let reason = format!("scan data is missing or damaged ({})", message(cinfo));
        resume_unwind(Box::new(LibjpegError(reason)))
    }
}

fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: as in `warn`; format_message writes at most JMSG_LENGTH_MAX (80) bytes.
    let format = unsafe { (*cinfo.err).format_message };
    let buffer = [0u8; 80];
    if let Some(format) = format {
        // SAFETY: libjpeg's own formatter, on its own struct, into a buffer of the 80
        // bytes it writes at most.
        unsafe { format(cinfo, &buffer) };
    }
    let text = buffer.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// CMYK to RGB, undoing Adobe's inversion where the file has it (then 255 = no ink).
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let ink = |v: u8| if inverted { 255 - v as u32 } else { v as u32 };
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let k = 255 - ink(p[3]);
        for &c in &p[..3] {
            out.push(((255 - ink(c)) * k / 255) as u8);
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

/// More scans than any encoder writes (libjpeg-turbo's own tools stop at 500): each scan
/// of a progressive file is a pass over the whole image, so thousands of tiny scans would
/// make a small file cost minutes.
const MAX_SCANS: usize = 500;

/// Refuses a file whose scans stop before every coefficient is complete (a cut file given
/// its end marker back), that has more than [`MAX_SCANS`] scans, or a segment length that
/// cannot be.
fn check_scans(bytes: &[u8]) -> Result<(), PipelineError> {
    let layout = scan_layout(bytes);
    if layout.malformed {
        return Err(corrupt("a segment declares a length under its own 2 bytes"));
    }
    if layout.reached_end && !layout.coverage.complete() {
        return Err(corrupt(
            "scan data is missing: the scans end before every coefficient is complete",
        ));
    }
    if layout.ends.len() > MAX_SCANS {
        return Err(corrupt(format!("more than {MAX_SCANS} scans")));
    }
    Ok(())
}

#[derive(Default)]
struct ScanLayout {
    /// Offsets of the markers that end each scan's entropy-coded data.
    ends: Vec<usize>,
    coverage: Coverage,
    /// The walk reached the end-of-image marker (else the decoder judges the structure).
    reached_end: bool,
    /// A segment declares a length under 2.
    malformed: bool,
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
                // The length counts its own two bytes: less is malformed (libjpeg skips
                // such a segment; a fuzz-mutated header made the walker slice backwards).
                let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
                if len < 2 {
                    layout.malformed = true;
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

#[cfg(test)]
mod tests {
    /// The speed figures assume the SIMD decoder; a build without nasm must not pass
    /// silently (CI installs nasm, as the container build does).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn jpeg_decoding_runs_libjpeg_turbos_simd() {
        assert!(
            super::simd(),
            "libjpeg-turbo was built without its SIMD code: install nasm and rebuild mozjpeg-sys \
             (cargo clean -p mozjpeg-sys)"
        );
    }
}

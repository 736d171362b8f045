//! What ingest allocates, counted by this test binary's allocator: a decompression bomb is
//! refused from its header without allocating its pixels, and a large JPEG is decoded
//! straight to a reduced size instead of at full resolution.
//!
//! JPEG is decoded by libjpeg-turbo, whose own buffers (Huffman tables, a few rows of
//! samples, a progressive file's coefficients) are C allocations this allocator does not
//! see; what it counts is the pixels libjpeg hands over and everything after them, which
//! is where a full-size decode would show (a full-size RGB buffer).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use facelive_pipeline::ingest::{ingest, IngestOptions};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: the caller's layout, passed on as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: a block this allocator gave out (from System) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The counters are process-wide: each test holds this for its whole run (reading its
/// file and dropping its image included), or another test's allocations land in its window.
static SERIAL: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Peak bytes allocated (above what was live before) while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - before)
}

#[test]
fn bomb_is_refused_from_its_header_without_allocating_its_pixels() {
    let _alone = alone();
    let bytes = facelive_testdata::read("edge/bomb_30000x30000.png");
    let (res, peak) = peak_during(|| ingest(&bytes, &IngestOptions::default()));
    let err = res.unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    // 900 Mpx would be 900 MB even at one byte per pixel; the header check needs almost
    // nothing beyond the decoder's small buffers.
    assert!(
        peak < 4 << 20,
        "ingest allocated {peak} bytes for a refused image"
    );
}

#[test]
fn large_jpeg_beyond_the_full_resolution_limit_is_decoded_at_a_reduced_size() {
    let _alone = alone();
    // 2000x2400 baseline JPEG: 14.4 MB as full-size RGB.
    let bytes = facelive_testdata::read("live/deepface_img54.jpg");
    let opts = IngestOptions {
        max_side: 640,
        full_resolution_pixels: 2000 * 2400 - 1,
        ..Default::default()
    };
    let (res, peak) = peak_during(|| ingest(&bytes, &opts));
    let ing = res.unwrap();
    assert_eq!(
        (ing.info.width, ing.info.height),
        (2000, 2400),
        "original size reported"
    );
    assert_eq!(ing.image.width.max(ing.image.height), 640);
    assert!(
        ing.full.is_none(),
        "no full-resolution pixels beyond the limit"
    );
    let full_rgb = 2000 * 2400 * 3;
    // DCT scaling to 1/2 hands over a quarter of the full RGB (3.6 MB), then the working
    // image is made from it; a full-size decode would hand over all 14.4 MB at once.
    eprintln!("2000x2400 JPEG: peak {peak} bytes, full RGB {full_rgb}");
    assert!(
        peak < full_rgb / 2,
        "peak {peak} bytes vs {full_rgb} for the full image"
    );
}

#[test]
fn twelve_megapixel_progressive_jpeg_beyond_the_limit_becomes_a_working_size_image() {
    let _alone = alone();
    // 4352x2903 progressive JPEG: progressive decoding keeps its coefficients (2 bytes per
    // sample), but the pixels are produced at a reduced scale.
    let bytes = facelive_testdata::read("live/deepface_img49.jpg");
    let opts = IngestOptions {
        full_resolution_pixels: 4352 * 2903 - 1,
        ..Default::default()
    };
    let (res, peak) = peak_during(|| ingest(&bytes, &opts));
    let ing = res.unwrap();
    assert_eq!((ing.info.width, ing.info.height), (4352, 2903));
    assert_eq!(ing.image.width, opts.max_side);
    assert!(ing.full.is_none());
    let full_rgb = 4352 * 2903 * 3;
    eprintln!("12 Mpx progressive JPEG: peak {peak} bytes, full RGB {full_rgb}");
    // The reduced decode hands over a quarter of the full RGB (9.5 MB), then the working
    // image (2048 px wide, 8.4 MB) is made from it; a full-size decode alone would hand over
    // all 37.9 MB.
    assert!(
        peak < full_rgb * 3 / 4,
        "peak {peak} bytes; full RGB alone is {full_rgb}"
    );
}

#[test]
fn a_reduced_photo_within_the_limit_keeps_its_full_resolution_pixels_for_the_judges() {
    let _alone = alone();
    let bytes = facelive_testdata::read("live/deepface_img49.jpg");
    let (res, peak) = peak_during(|| ingest(&bytes, &IngestOptions::default()));
    let ing = res.unwrap();
    assert_eq!(ing.image.width, IngestOptions::default().max_side);
    let full = ing
        .full
        .as_ref()
        .expect("12.6 Mpx is within the default limit");
    assert_eq!((full.width, full.height), (4352, 2903));
    let full_rgb = 4352 * 2903 * 3;
    // The progressive coefficients (2 bytes a sample), the full RGB and the working image
    // (8.4 MB) at their peak: 1.7 times the full RGB measured (64 MB), within the server's
    // decode budget of 7.5 bytes a pixel.
    eprintln!("12 Mpx progressive JPEG kept whole: peak {peak} bytes, full RGB {full_rgb}");
    assert!(
        peak < full_rgb * 5 / 2,
        "peak {peak} bytes; full RGB alone is {full_rgb}"
    );
}

//! Metadata facelive does not use is never inflated. A 640x480 PNG whose colour profile
//! (iCCP, a zlib stream) inflates to 256 MiB decodes with a few megabytes allocated, as the
//! same picture without it does; before, the profile was inflated, at up to twice its size.
//! The allocator of this test binary counts the peak of live bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use facelive_pipeline::ingest::{ingest, IngestOptions};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = // SAFETY: the caller's layout, passed on as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a block this allocator gave out (from System) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A 640x480 RGB PNG of a gradient, with `profile` as its iCCP chunk when given.
fn png(profile: Option<Vec<u8>>) -> Vec<u8> {
    let (w, h) = (640u32, 480u32);
    let mut info = png::Info::with_size(w, h);
    info.color_type = png::ColorType::Rgb;
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = profile.map(Cow::Owned);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    let mut writer = png::Encoder::with_info(&mut out, info)
        .unwrap()
        .write_header()
        .unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

/// Peak bytes allocated while `bytes` is ingested, above what was live before.
fn peak_of_ingest(bytes: &[u8]) -> usize {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let img = ingest(bytes, &IngestOptions::default()).expect("a plain RGB PNG decodes");
    assert_eq!((img.info.width, img.info.height), (640, 480));
    PEAK.load(Ordering::SeqCst) - before
}

#[test]
fn a_colour_profile_bomb_is_never_inflated() {
    let plain = png(None);
    let bomb = png(Some(vec![0u8; 256 << 20]));
    assert!(
        bomb.len() < 2 << 20,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    let plain_peak = peak_of_ingest(&plain);
    let bomb_peak = peak_of_ingest(&bomb);
    assert!(
        bomb_peak < plain_peak + (1 << 20),
        "{bomb_peak} bytes at the peak with the profile, {plain_peak} without"
    );
}

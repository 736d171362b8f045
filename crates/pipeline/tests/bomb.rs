//! The decompression bomb is refused from its header without allocating its pixels: this
//! test binary counts every allocation made while the bomb is ingested.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use facelive_pipeline::ingest::{ingest, IngestOptions};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn bomb_is_refused_from_its_header_without_allocating_its_pixels() {
    let bytes = facelive_testdata::read("edge/bomb_30000x30000.png");
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let err = ingest(&bytes, &IngestOptions::default()).unwrap_err();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert_eq!(err.code(), "image_too_large");
    // 900 Mpx would be 900 MB even at one byte per pixel; the header check needs almost
    // nothing beyond the decoder's small buffers.
    assert!(
        peak < 4 << 20,
        "ingest allocated {peak} bytes for a refused image"
    );
}

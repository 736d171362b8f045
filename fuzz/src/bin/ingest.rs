//! Ingest of any bytes: format sniffing, header reading, decoding with its limits, EXIF
//! orientation and reduction. Nothing may panic, and what decodes must respect the limits.

use facelive_pipeline::ingest::{header_pixels, ingest, IngestOptions};

fn main() {
    // Small limits keep each run fast and reach the refusal paths often.
    let opts = IngestOptions {
        max_pixels: 4_000_000,
        max_side: 512,
        auto_rotate: true,
        ..IngestOptions::default()
    };
    afl::fuzz!(|data: &[u8]| {
        let declared = header_pixels(data);
        if let Ok(img) = ingest(data, &opts) {
            let info = &img.info;
            assert!(info.width as u64 * info.height as u64 <= opts.max_pixels);
            assert_eq!(declared.ok(), Some(info.width as u64 * info.height as u64));
            assert!(img.image.width.max(img.image.height) <= opts.max_side);
            assert_eq!(
                img.image.data.len(),
                img.image.width as usize * img.image.height as usize * 3
            );
        }
    });
}

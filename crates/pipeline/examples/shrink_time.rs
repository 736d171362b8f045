//! How long the INTER_AREA shrink takes on the sizes the detector meets (docs/BENCHMARKS.md).
//!
//!     cargo run --release -p facelive-pipeline --example shrink_time
//!
//! A 640x480 frame to the coarse pass's 213x159, a 2048-pixel working image to the
//! detector's 640, a face crop to its coarse size; best of 50 runs each, on a fixed
//! pseudo-random image (the time does not depend on the values).

use std::time::Instant;

use facelive_pipeline::image::RgbImage;
use facelive_pipeline::imageops::area_downscale;

fn main() {
    for (sw, sh, dw, dh) in [
        (640, 480, 213, 159),
        (2048, 1365, 640, 426),
        (270, 310, 185, 213),
    ] {
        let data = (0..sw * sh * 3)
            .map(|i| ((i as u64 * 7919) % 251) as u8)
            .collect();
        let img = RgbImage::new(sw, sh, data);
        let best = (0..50)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(area_downscale(&img, dw, dh));
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::MAX, f64::min);
        println!("{sw}x{sh} -> {dw}x{dh}: {best:.3} ms");
    }
}

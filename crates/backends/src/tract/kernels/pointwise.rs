//! The 1x1 convolution's product: `out[o, p] = sum over i of w[o, i] * x[i, p], plus
//! bias[o]`, with the weights packed once at plan build by tiles of [`ROWS`] output
//! channels. Each output is the sum over input channels in order (fused multiply-adds),
//! then the bias, on every path: the order tract's kernels add in.
//!
//! The AVX-512F path reads the activation where it lies: its `[in, pixels]` rows are what
//! an output tile of 8 channels by 32 pixels needs, one row per input channel, so nothing
//! is packed per run.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per tile: 8 rows of two 16-lane registers are 16 accumulators, with
/// registers to spare for the two activation loads and the weight broadcasts.
pub(crate) const ROWS: usize = 8;
/// Pixels per tile: two AVX-512 registers.
#[cfg(target_arch = "x86_64")]
const COLS: usize = 32;

/// The code that computes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// The definition, one output at a time.
    Plain,
    /// AVX-512F tiles.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Path {
    /// The fastest path this CPU runs (asked per evaluation: no allocation).
    pub fn best() -> Path {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Path::Avx512;
        }
        Path::Plain
    }

    /// Every path this CPU runs, the fastest last: what the tests compare.
    #[cfg(test)]
    pub fn available() -> Vec<Path> {
        let mut paths = vec![Path::Plain];
        if Path::best() != Path::Plain {
            paths.push(Path::best());
        }
        paths
    }
}

/// `[out, in]` row-major weights as `[tile][in][row]` tiles of [`ROWS`] output channels,
/// rows past the last output channel zero.
pub(crate) fn pack(weights: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let tiles = out_channels.div_ceil(ROWS);
    let mut packed = vec![0.0f32; tiles * in_channels * ROWS];
    for (o, row) in weights.chunks_exact(in_channels).enumerate() {
        let tile = &mut packed[o / ROWS * in_channels * ROWS..][..in_channels * ROWS];
        for (i, &w) in row.iter().enumerate() {
            tile[i * ROWS + o % ROWS] = w;
        }
    }
    packed
}

/// One evaluation's operands: packed weights ([`pack`]), bias and sizes.
pub(crate) struct Product<'a> {
    pub packed: &'a [f32],
    pub bias: &'a [f32],
    pub in_channels: usize,
    pub pixels: usize,
}

impl Product<'_> {
    /// `out` (`[out, pixels]`, `bias.len()` output channels) from `x` (`[in, pixels]`).
    ///
    /// # Panics
    /// When a length does not fit the sizes, or `path` is one this CPU does not run.
    pub fn multiply(&self, path: Path, x: &[f32], out: &mut [f32]) {
        let (m, k, n) = (self.bias.len(), self.in_channels, self.pixels);
        assert_eq!(x.len(), k * n, "activation length");
        assert_eq!(out.len(), m * n, "output length");
        assert_eq!(
            self.packed.len(),
            m.div_ceil(ROWS) * k * ROWS,
            "packed length"
        );
        match path {
            Path::Plain => self.plain(x, out),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => {
                assert!(std::arch::is_x86_feature_detected!("avx512f"));
                // SAFETY: AVX-512F was just detected; the lengths were checked above
                // against the sizes `avx512` indexes with.
                unsafe { self.avx512(x, out) }
            }
        }
    }

    /// The definition.
    fn plain(&self, x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.in_channels, self.pixels);
        for (o, row) in out.chunks_exact_mut(n.max(1)).enumerate() {
            let tile = &self.packed[o / ROWS * k * ROWS..][..k * ROWS];
            for (p, v) in row.iter_mut().enumerate() {
                let sum = (0..k).fold(0f32, |s, i| {
                    tile[i * ROWS + o % ROWS].mul_add(x[i * n + p], s)
                });
                *v = sum + self.bias[o];
            }
        }
    }

    /// [`Self::multiply`] tile by tile.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `x` holds `in_channels * pixels` values, `out` `bias.len() *
    /// pixels`, `packed` the tiles of `bias.len()` output channels.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(&self, x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.in_channels, self.pixels);
        for (tile, weights) in self.packed.chunks_exact(k * ROWS).enumerate() {
            let first = tile * ROWS;
            let rows = (self.bias.len() - first).min(ROWS);
            for col in (0..n).step_by(COLS) {
                let width = (n - col).min(COLS);
                // SAFETY: this function's own contract (AVX-512F, `x` of `k` rows of `n`),
                // and `col + width <= n` by the loop.
                let acc = unsafe { self.tile(weights, x, col, width) };
                for (r, sums) in acc.iter().take(rows).enumerate() {
                    let row = &mut out[(first + r) * n + col..][..width];
                    // SAFETY: AVX-512F as above; `row` holds exactly `width` values.
                    unsafe { store(sums, self.bias[first + r], row) };
                }
            }
        }
    }

    /// The sums of one tile: [`ROWS`] output channels by `width` (at most [`COLS`])
    /// pixels from `col` on, over every input channel in order.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `x` holds one row of `pixels` values per `ROWS` values of
    /// `weights`, and `col + width <= pixels`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile(
        &self,
        weights: &[f32],
        x: &[f32],
        col: usize,
        width: usize,
    ) -> [[__m512; 2]; ROWS] {
        let (lo, hi) = lane_masks(width);
        let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
        for (i, w) in weights.chunks_exact(ROWS).enumerate() {
            // Masked lanes are not read: the pointer past `x`'s end is never dereferenced.
            let at = x.as_ptr().wrapping_add(i * self.pixels + col);
            // SAFETY: AVX-512F (the contract); the masks enable only lanes below `width`,
            // whose addresses `col + width <= pixels` keeps inside row `i` of `x`.
            let (x0, x1) = unsafe {
                (
                    _mm512_maskz_loadu_ps(lo, at),
                    _mm512_maskz_loadu_ps(hi, at.wrapping_add(16)),
                )
            };
            for (sums, &wr) in acc.iter_mut().zip(w) {
                let wr = _mm512_set1_ps(wr);
                sums[0] = _mm512_fmadd_ps(wr, x0, sums[0]);
                sums[1] = _mm512_fmadd_ps(wr, x1, sums[1]);
            }
        }
        acc
    }
}

/// The lanes of the two registers a tile `width` pixels wide uses.
#[cfg(target_arch = "x86_64")]
fn lane_masks(width: usize) -> (__mmask16, __mmask16) {
    let mask = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
    (mask(width), mask(width.saturating_sub(16)))
}

/// `row = sums + bias`, `row.len()` (at most [`COLS`]) values.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store(sums: &[__m512; 2], bias: f32, row: &mut [f32]) {
    let (lo, hi) = lane_masks(row.len());
    let b = _mm512_set1_ps(bias);
    let at = row.as_mut_ptr();
    // SAFETY: the masks cover `row.len()` lanes from `at`; masked lanes are not written.
    unsafe {
        _mm512_mask_storeu_ps(at, lo, _mm512_add_ps(sums[0], b));
        _mm512_mask_storeu_ps(at.wrapping_add(16), hi, _mm512_add_ps(sums[1], b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Just, Strategy};

    /// The definition on the unpacked `[out, in]` weights.
    fn direct(weights: &[f32], bias: &[f32], x: &[f32], k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; bias.len() * n];
        for (o, &b) in bias.iter().enumerate() {
            for p in 0..n {
                let sum = (0..k).fold(0f32, |s, i| weights[o * k + i].mul_add(x[i * n + p], s));
                out[o * n + p] = sum + b;
            }
        }
        out
    }

    fn on_every_path(
        weights: &[f32],
        bias: &[f32],
        x: &[f32],
        k: usize,
        n: usize,
    ) -> Vec<(Path, Vec<f32>)> {
        let packed = pack(weights, bias.len(), k);
        let product = Product {
            packed: &packed,
            bias,
            in_channels: k,
            pixels: n,
        };
        Path::available()
            .into_iter()
            .map(|path| {
                let mut out = vec![f32::NAN; bias.len() * n];
                product.multiply(path, x, &mut out);
                (path, out)
            })
            .collect()
    }

    /// Whole tiles, a last tile short in channels, in pixels or both, and the one-pixel,
    /// one-channel corner, bit for bit on every path.
    #[test]
    fn every_tile_shape_matches_the_definition() {
        for (m, k, n) in [(8, 3, 32), (13, 5, 37), (17, 9, 16), (9, 7, 25), (1, 1, 1)] {
            let weights: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.4)
                .collect();
            let bias: Vec<f32> = (0..m).map(|o| o as f32 * 0.5 - 2.0).collect();
            let x: Vec<f32> = (0..k * n).map(|i| ((i * 13) % 17) as f32 - 8.25).collect();
            let want = direct(&weights, &bias, &x, k, n);
            for (path, got) in on_every_path(&weights, &bias, &x, k, n) {
                assert_eq!(got, want, "{path:?} {m}x{k}x{n}");
            }
        }
    }

    proptest::proptest! {
        /// Any shape (channels and pixels not multiples of the tile, down to one) and any
        /// values: bit for bit the definition, on every path this CPU runs.
        #[test]
        fn any_shape_matches_the_definition_on_every_path(
            (m, k, n, values) in (1usize..40, 1usize..40, 1usize..100).prop_flat_map(|(m, k, n)| {
                (Just(m), Just(k), Just(n), proptest::collection::vec(-8f32..8f32, m * k + m + k * n))
            })
        ) {
            let (weights, rest) = values.split_at(m * k);
            let (bias, x) = rest.split_at(m);
            let want = direct(weights, bias, x, k, n);
            for (path, got) in on_every_path(weights, bias, x, k, n) {
                proptest::prop_assert_eq!(&got, &want, "{:?}", path);
            }
        }
    }
}

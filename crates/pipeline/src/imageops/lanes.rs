//! The INTER_AREA shrink's moves between rows and vector lanes, and its rounding to bytes
//! ([`super::resize::area_downscale`]). Written one value at a time these were most of the
//! shrink's time; with AVX2 they go eight values at a time.
//!
//! The dispatch style of facelive's kernels (as the backends' `tract/kernels/`): each
//! function is the plain definition, which every CPU runs, plus a vector path behind
//! `#[target_feature]` chosen at run time (`is_x86_feature_detected!`, a constant true in
//! the default x86-64-v3 build). The choice is a value ([`Path`]), so the property tests
//! run every path this CPU has against the definition, in any build.

/// Rows of source values per block of the shrink's horizontal pass: one per vector lane.
pub(super) const LANES: usize = 8;

/// The code that moves and rounds values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// The definition, one value at a time.
    Plain,
    /// Eight at a time.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Path {
    /// The fastest path this CPU runs (asked per image: no allocation).
    pub fn best() -> Path {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Path::Avx2;
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

/// `cols[k][r] = src[r][k]` as f32: the block's rows, column by column. One value at a time
/// this was a third of the shrink's time; with AVX2, eight columns of the eight rows are
/// widened and transposed in registers.
pub(super) fn fill_lanes(path: Path, src: &[&[u8]; LANES], cols: &mut [[f32; LANES]]) {
    let done = match path {
        Path::Plain => 0,
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            assert!(std::arch::is_x86_feature_detected!("avx2"));
            // SAFETY: AVX2 was just detected.
            unsafe { fill_lanes_avx2(src, cols) }
        }
    };
    for (k, col) in cols.iter_mut().enumerate().skip(done) {
        *col = std::array::from_fn(|r| src[r][k] as f32);
    }
}

/// [`fill_lanes`] for whole groups of eight columns; returns how many columns it filled.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_lanes_avx2(src: &[&[u8]; LANES], cols: &mut [[f32; LANES]]) -> usize {
    use std::arch::x86_64::*;
    const { assert!(LANES == 8) };
    let whole = cols.len() / 8 * 8;
    for (group, out) in cols[..whole].chunks_exact_mut(8).enumerate() {
        let k = group * 8;
        let mut rows = [_mm256_setzero_ps(); 8];
        for (v, row) in rows.iter_mut().zip(src) {
            let bytes: &[u8; 8] = row[k..k + 8].try_into().expect("8 bytes");
            // SAFETY: `bytes` is 8 readable bytes, what the 64-bit load reads.
            let b = unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) };
            *v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
        }
        for (col, v) in out.iter_mut().zip(transpose8(rows)) {
            // SAFETY: `col` is 8 writable f32, what the store writes.
            unsafe { _mm256_storeu_ps(col.as_mut_ptr(), v) };
        }
    }
    whole
}

/// The 8x8 transpose of eight registers of eight f32: lane `r` of output `j` is lane `j`
/// of input `r`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose8(r: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let (a, b) = (
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
    );
    let (c, d) = (
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
    );
    let (e, f) = (
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
    );
    let (g, h) = (
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    );
    // Columns 0-3 of rows 0-3 (low halves) and 4-7 (high halves), then rows 4-7.
    let top = [
        _mm256_shuffle_ps::<0x44>(a, c),
        _mm256_shuffle_ps::<0xEE>(a, c),
        _mm256_shuffle_ps::<0x44>(b, d),
        _mm256_shuffle_ps::<0xEE>(b, d),
    ];
    let bottom = [
        _mm256_shuffle_ps::<0x44>(e, g),
        _mm256_shuffle_ps::<0xEE>(e, g),
        _mm256_shuffle_ps::<0x44>(f, h),
        _mm256_shuffle_ps::<0xEE>(f, h),
    ];
    let mut out = [_mm256_setzero_ps(); 8];
    for j in 0..4 {
        out[j] = _mm256_permute2f128_ps::<0x20>(top[j], bottom[j]);
        out[j + 4] = _mm256_permute2f128_ps::<0x31>(top[j], bottom[j]);
    }
    out
}

/// `rows[r * len + k] = acc[k][r]` for the first `n` lanes, `len` being `acc.len()`: the
/// block's results back to rows, the inverse of [`fill_lanes`].
pub(super) fn empty_lanes(path: Path, acc: &[[f32; LANES]], rows: &mut [f32], n: usize) {
    let len = acc.len();
    let done = match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 if n == LANES => {
            assert!(std::arch::is_x86_feature_detected!("avx2"));
            // SAFETY: AVX2 was just detected.
            unsafe { empty_lanes_avx2(acc, rows) }
        }
        _ => 0,
    };
    for (r, row) in rows.chunks_exact_mut(len).take(n).enumerate() {
        for (v, a) in row[done..].iter_mut().zip(&acc[done..]) {
            *v = a[r];
        }
    }
}

/// [`empty_lanes`] of a full block for whole groups of eight columns; returns how many
/// columns it emptied.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn empty_lanes_avx2(acc: &[[f32; LANES]], rows: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let len = acc.len();
    let whole = len / 8 * 8;
    for (group, cols) in acc[..whole].chunks_exact(8).enumerate() {
        let mut v = [_mm256_setzero_ps(); 8];
        for (v, col) in v.iter_mut().zip(cols) {
            // SAFETY: `col` is 8 readable f32, what the load reads.
            *v = unsafe { _mm256_loadu_ps(col.as_ptr()) };
        }
        for (r, row) in transpose8(v).into_iter().enumerate() {
            let out: &mut [f32; 8] = (&mut rows[r * len + group * 8..][..8])
                .try_into()
                .expect("8 values");
            // SAFETY: `out` is 8 writable f32, what the store writes.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), row) };
        }
    }
    whole
}

/// `out[i] = acc[i].round().clamp(0.0, 255.0) as u8`. Rust's saturating float-to-byte
/// conversion compiles to one scalar conversion per value; with AVX2, eight at a time.
pub(super) fn round_to_bytes(path: Path, acc: &[f32], out: &mut [u8]) {
    let done = match path {
        Path::Plain => 0,
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            assert!(std::arch::is_x86_feature_detected!("avx2"));
            // SAFETY: AVX2 was just detected.
            unsafe { round_to_bytes_avx2(acc, out) }
        }
    };
    for (o, v) in out.iter_mut().zip(acc).skip(done) {
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// [`round_to_bytes`] for whole groups of eight values; returns how many it wrote.
/// `f32::round` (half away from zero) is `trunc(v + copysign(0.49999997, v))`, exactly:
/// the largest float under a half makes every fraction of a half or more carry, and
/// nothing under it (LLVM lowers `round` the same way).
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn round_to_bytes_avx2(acc: &[f32], out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let whole = acc.len().min(out.len()) / 8 * 8;
    let half = _mm256_set1_ps(f32::from_bits(0.5f32.to_bits() - 1));
    let sign = _mm256_set1_ps(-0.0);
    let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
    for (v, o) in acc[..whole].chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        // SAFETY: `v` is 8 readable f32, what the load reads.
        let v = unsafe { _mm256_loadu_ps(v.as_ptr()) };
        let nudge = _mm256_or_ps(_mm256_and_ps(v, sign), half);
        let r =
            _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(_mm256_add_ps(v, nudge));
        let i = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, zero), top));
        // Eight 32-bit values in 0..=255 to bytes: pack to 16 bits, then to 8.
        let w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
        let bytes = _mm_packus_epi16(w, w);
        let o: &mut [u8; 8] = o.try_into().expect("8 bytes");
        // SAFETY: `o` is 8 writable bytes, what the 64-bit store writes.
        unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), bytes) };
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    /// Every value from -1 to 300 in steps of 1/1024, each half-way value and its
    /// neighbours one ulp away, and the float just under a half, round as `f32::round`.
    #[test]
    fn round_to_bytes_rounds_as_f32_round() {
        let halves = (-1..300).flat_map(|k| {
            let h = k as f32 + 0.5;
            [
                h,
                f32::from_bits(h.to_bits() - 1),
                f32::from_bits(h.to_bits() + 1),
            ]
        });
        let grid = (-1024..300 * 1024).map(|i| i as f32 / 1024.0);
        let mut values: Vec<f32> = halves.chain(grid).collect();
        values.push(f32::from_bits(0.5f32.to_bits() - 1));
        for path in Path::available() {
            let mut out = vec![0u8; values.len()];
            round_to_bytes(path, &values, &mut out);
            for (v, o) in values.iter().zip(&out) {
                assert_eq!(*o, v.round().clamp(0.0, 255.0) as u8, "{path:?} {v}");
            }
        }
    }

    proptest::proptest! {
        /// Any number of columns (whole groups of eight on the AVX2 path, then a scalar
        /// tail), any bytes: the block's rows column by column, and back again.
        #[test]
        fn filling_and_emptying_lanes_transpose_exactly(
            (len, bytes) in (1usize..70).prop_flat_map(|len| {
                (proptest::strategy::Just(len), proptest::collection::vec(proptest::num::u8::ANY, len * LANES))
            })
        ) {
            let rows: Vec<&[u8]> = bytes.chunks_exact(len).collect();
            let src: [&[u8]; LANES] = std::array::from_fn(|r| rows[r]);
            for path in Path::available() {
                let mut cols = vec![[f32::NAN; LANES]; len];
                fill_lanes(path, &src, &mut cols);
                for (k, col) in cols.iter().enumerate() {
                    for r in 0..LANES {
                        proptest::prop_assert_eq!(col[r], src[r][k] as f32, "{:?}", path);
                    }
                }
                for n in [LANES, 3] {
                    let mut back = vec![f32::NAN; len * LANES];
                    empty_lanes(path, &cols, &mut back, n);
                    for r in 0..n {
                        for k in 0..len {
                            proptest::prop_assert_eq!(back[r * len + k], src[r][k] as f32, "{:?}", path);
                        }
                    }
                }
            }
        }

        /// Any values, any length: each byte as `f32::round` and a clamp make it.
        #[test]
        fn any_values_round_to_bytes_as_the_definition(
            values in proptest::collection::vec(-20f32..300f32, 0..70)
        ) {
            for path in Path::available() {
                let mut out = vec![0u8; values.len()];
                round_to_bytes(path, &values, &mut out);
                for (v, o) in values.iter().zip(&out) {
                    proptest::prop_assert_eq!(*o, v.round().clamp(0.0, 255.0) as u8, "{:?}", path);
                }
            }
        }
    }
}

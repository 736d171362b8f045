//! 1x1 convolutions (channels first, stride 1) as one matrix product with AVX-512.
//!
//! tract declutters a 1x1 `Conv` into an `EinSum` of the constant `[out, in]` weights and
//! the activation, plus a bias `Add`, and runs it through its general matrix kernels, which
//! first pack the activation. MiniFASNet's 1x1 layers are small (13 to 512 channels over
//! 40x40 down to 5x5 planes) and carry 75 of its 81 MFLOP. Here the activation is read
//! where it lies: its `[in, pixels]` rows are already what an output tile of 8 channels by
//! 32 pixels needs, one row per input channel, so nothing is packed per run; the weights
//! are packed once, at plan build, eight output channels at a time. Each output is the sum
//! over input channels in order (fused multiply-adds), then the bias: the order tract's
//! kernels add in, and on the dev set every output is identical to theirs.
//!
//! Compiled on every x86-64 build; the rewrite that puts it in a plan happens only where
//! the CPU running the plan has AVX-512F (elsewhere tract's kernels stay).

use std::arch::x86_64::*;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_hir::internal::*;

/// Output channels per tile: 8 rows of two 16-lane registers are 16 accumulators, with
/// registers to spare for the two activation loads and the weight broadcasts.
const ROWS: usize = 8;
/// Pixels per tile: two AVX-512 registers.
const COLS: usize = 32;

/// Replaces every eligible 1x1 convolution of a decluttered model (its `EinSum` and the
/// bias `Add` after it) by [`Pointwise`]; leaves the model as it is on a CPU without
/// AVX-512F.
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return Ok(());
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(einsum) = node.op_as::<EinSum>() else {
            continue;
        };
        let Some((op, replaced)) = Pointwise::for_einsum(model, node, einsum)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(&model.node(replaced).name, op, &[x])?[0];
        patch.shunt_outside(model, replaced.into(), out)?;
        patch.apply(model)?;
    }
    model.compact()
}

/// `out[o, p] = sum over i of w[o, i] * x[i, p], plus bias[o]`, the activation `x` being
/// `[in, pixels]` after any leading axes of size 1, the output `[out, pixels]` likewise.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct Pointwise {
    /// The weights by tiles of [`ROWS`] output channels: `[tile][in][row]`, rows past the
    /// last output channel zero.
    packed: Arc<Tensor>,
    /// `[out]`.
    bias: Arc<Tensor>,
    out_channels: usize,
    in_channels: usize,
    output_shape: TVec<usize>,
}

impl Pointwise {
    /// The op for an f32 `EinSum` of an activation and constant `[out, in]` weights whose
    /// pixel axes follow the channel axis in the same order on both sides, with the bias
    /// `Add` that follows it if there is one; and the node whose output it replaces.
    fn for_einsum(
        model: &TypedModel,
        node: &TypedNode,
        einsum: &EinSum,
    ) -> TractResult<Option<(Self, usize)>> {
        let facts = model.node_input_facts(node.id)?;
        let output = &node.outputs[0].fact;
        let (Some(in_shape), Some(out_shape)) =
            (facts[0].shape.as_concrete(), output.shape.as_concrete())
        else {
            return Ok(None);
        };
        let weights = match (&facts[..], einsum.q_params) {
            ([x, w], None) if x.datum_type == f32::datum_type() => w.konst.clone(),
            _ => None,
        };
        let Some(weights) =
            weights.filter(|w| w.rank() == 2 && w.datum_type() == f32::datum_type())
        else {
            return Ok(None);
        };
        let axes = &einsum.axes;
        let reprs = |io| axes.axes(io).map(|a| a.repr).collect::<Vec<char>>();
        let (x_axes, w_axes, out_axes) = (
            reprs(InOut::In(0)),
            reprs(InOut::In(1)),
            reprs(InOut::Out(0)),
        );
        let &[o, i] = &w_axes[..] else {
            return Ok(None);
        };
        let (Some(pi), Some(po)) = (
            x_axes.iter().position(|&a| a == i),
            out_axes.iter().position(|&a| a == o),
        ) else {
            return Ok(None);
        };
        // Leading axes of size 1 on both sides, then the channels, then the same pixels.
        let eligible = in_shape[..pi].iter().all(|&d| d == 1)
            && out_shape[..po].iter().all(|&d| d == 1)
            && x_axes[pi + 1..] == out_axes[po + 1..]
            && !x_axes.contains(&o)
            && weights.len() > 0
            && in_shape[pi] == weights.shape()[1]
            && out_shape[po] == weights.shape()[0];
        if !eligible {
            return Ok(None);
        }
        let (out_channels, in_channels) = (weights.shape()[0], weights.shape()[1]);
        let (bias, replaced) = match bias_after(model, node, out_shape, po, out_channels)? {
            Some((bias, add)) => (bias, add),
            None => (vec![0.0; out_channels], node.id),
        };
        let w_plain = weights.try_as_plain_ram()?;
        let op = Pointwise {
            packed: pack(w_plain.as_slice::<f32>()?, out_channels, in_channels).into_arc_tensor(),
            bias: tensor1(&bias).into_arc_tensor(),
            out_channels,
            in_channels,
            output_shape: out_shape.into(),
        };
        Ok(Some((op, replaced)))
    }
}

/// The bias of the `Add` that is the only consumer of the product, when it adds one
/// constant per output channel (the channel axis at `po`) and keeps the shape; with that
/// node's id.
fn bias_after(
    model: &TypedModel,
    node: &TypedNode,
    out_shape: &[usize],
    po: usize,
    channels: usize,
) -> TractResult<Option<(Vec<f32>, usize)>> {
    let succ = model.outlet_successors(OutletId::new(node.id, 0));
    let [next] = succ else {
        return Ok(None);
    };
    let add = model.node(next.node);
    if !add.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>())
        || add.outputs[0].fact.shape.as_concrete() != Some(out_shape)
    {
        return Ok(None);
    }
    let other = add.inputs[1 - next.slot];
    let Some(bias) = model.outlet_fact(other)?.konst.clone() else {
        return Ok(None);
    };
    // Broadcasting aligns the bias's axes with the output's last ones.
    let Some(offset) = out_shape.len().checked_sub(bias.rank()) else {
        return Ok(None);
    };
    let per_channel = bias.datum_type() == f32::datum_type()
        && bias.len() == channels
        && bias
            .shape()
            .iter()
            .enumerate()
            .all(|(a, &d)| d == 1 || a + offset == po);
    if !per_channel {
        return Ok(None);
    }
    let bias_plain = bias.try_as_plain_ram()?;
    Ok(Some((bias_plain.as_slice::<f32>()?.to_vec(), add.id)))
}

/// `[out, in]` row-major weights as `[tile][in][row]` tiles of [`ROWS`] output channels.
fn pack(weights: &[f32], out_channels: usize, in_channels: usize) -> Tensor {
    let tiles = out_channels.div_ceil(ROWS);
    let mut packed = vec![0.0f32; tiles * in_channels * ROWS];
    for (o, row) in weights.chunks_exact(in_channels).enumerate() {
        let tile = &mut packed[o / ROWS * in_channels * ROWS..][..in_channels * ROWS];
        for (i, &w) in row.iter().enumerate() {
            tile[i * ROWS + o % ROWS] = w;
        }
    }
    tensor1(&packed)
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "Pointwise".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let x_plain = input.try_as_plain_ram()?;
        Ok(tvec!(self.apply(x_plain.as_slice::<f32>()?)?.into_tvalue()))
    }
}

impl Pointwise {
    /// The output for the activation `x`, `[in, pixels]` values.
    fn apply(&self, x: &[f32]) -> TractResult<Tensor> {
        let pixels = x.len() / self.in_channels;
        ensure!(
            x.len() == pixels * self.in_channels
                && self.output_shape.iter().product::<usize>() == pixels * self.out_channels,
            "Pointwise: {} input values do not fit output {:?}",
            x.len(),
            self.output_shape
        );
        ensure!(
            std::arch::is_x86_feature_detected!("avx512f"),
            "Pointwise needs AVX-512F"
        );
        // SAFETY: the product below writes every output value before anything reads one.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        let mut out_plain = output.try_as_plain_ram_mut()?;
        let packed_plain = self.packed.try_as_plain_ram()?;
        let bias_plain = self.bias.try_as_plain_ram()?;
        let product = Product {
            packed: packed_plain.as_slice::<f32>()?,
            bias: bias_plain.as_slice::<f32>()?,
            in_channels: self.in_channels,
            pixels,
        };
        // SAFETY: AVX-512F was checked above; the slices' lengths were checked against
        // the shapes `multiply` indexes with.
        unsafe { product.multiply(x, out_plain.as_slice_mut::<f32>()?) };
        Ok(output)
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// One evaluation's operands: packed weights, bias and sizes.
struct Product<'a> {
    packed: &'a [f32],
    bias: &'a [f32],
    in_channels: usize,
    pixels: usize,
}

impl Product<'_> {
    /// `out` (`[out, pixels]`) from `x` (`[in, pixels]`), tile by tile.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `x` holds `in_channels * pixels` values, `out` `bias.len() *
    /// pixels`, `packed` the tiles of `bias.len()` output channels.
    #[target_feature(enable = "avx512f")]
    unsafe fn multiply(&self, x: &[f32], out: &mut [f32]) {
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
fn lane_masks(width: usize) -> (__mmask16, __mmask16) {
    let mask = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
    (mask(width), mask(width.saturating_sub(16)))
}

/// `row = sums + bias`, `row.len()` (at most [`COLS`]) values.
///
/// # Safety
/// The CPU has AVX-512F.
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
    use proptest::strategy::Strategy;

    /// Against the definition, one output at a time, bit for bit (the same fused
    /// multiply-adds in the same order): whole tiles, a last tile short in channels, in
    /// pixels or both, and the one-pixel, one-channel corner.
    #[test]
    fn matches_the_direct_sum_for_every_tile_shape() {
        for (m, k, n) in [(8, 3, 32), (13, 5, 37), (17, 9, 16), (9, 7, 25), (1, 1, 1)] {
            let weights: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.4)
                .collect();
            let bias: Vec<f32> = (0..m).map(|o| o as f32 * 0.5 - 2.0).collect();
            let x: Vec<f32> = (0..k * n).map(|i| ((i * 13) % 17) as f32 - 8.25).collect();
            let op = Pointwise {
                packed: pack(&weights, m, k).into_arc_tensor(),
                bias: tensor1(&bias).into_arc_tensor(),
                out_channels: m,
                in_channels: k,
                output_shape: tvec![1, m, n],
            };
            let got = op.apply(&x);
            if !std::arch::is_x86_feature_detected!("avx512f") {
                // Never built there (see `rewrite`); an evaluation says why instead.
                assert!(got.is_err());
                continue;
            }
            let got = got.unwrap();
            let got = got.to_plain_array_view::<f32>().unwrap();
            assert_eq!(got.shape(), &[1, m, n]);
            for o in 0..m {
                for p in 0..n {
                    let sum = (0..k).fold(0f32, |s, i| weights[o * k + i].mul_add(x[i * n + p], s));
                    assert_eq!(got[[0, o, p]], sum + bias[o], "{m}x{k}x{n} at ({o}, {p})");
                }
            }
        }
    }

    fn direct(
        weights: &[f32],
        bias: &[f32],
        x: &[f32],
        (m, k, n): (usize, usize, usize),
    ) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for o in 0..m {
            for p in 0..n {
                let sum = (0..k).fold(0f32, |s, i| weights[o * k + i].mul_add(x[i * n + p], s));
                out[o * n + p] = sum + bias[o];
            }
        }
        out
    }

    proptest::proptest! {
        /// Any shape (channels and pixels not multiples of the tile, down to one) and any
        /// values: bit for bit the definition, on CPUs with AVX-512F (the only path: the
        /// rewrite never plans it elsewhere, and an evaluation there is an error).
        #[test]
        fn any_shape_matches_the_definition(
            (m, k, n, values) in (1usize..40, 1usize..40, 1usize..100).prop_flat_map(|(m, k, n)| {
                let len = m * k + m + k * n;
                (proptest::strategy::Just(m), proptest::strategy::Just(k), proptest::strategy::Just(n),
                 proptest::collection::vec(-8f32..8f32, len))
            })
        ) {
            let (weights, rest) = values.split_at(m * k);
            let (bias, x) = rest.split_at(m);
            let op = Pointwise {
                packed: pack(weights, m, k).into_arc_tensor(),
                bias: tensor1(bias).into_arc_tensor(),
                out_channels: m,
                in_channels: k,
                output_shape: tvec![1, m, n],
            };
            let got = op.apply(x);
            if !std::arch::is_x86_feature_detected!("avx512f") {
                proptest::prop_assert!(got.is_err());
                return Ok(());
            }
            let got = got.unwrap();
            let got = got.to_plain_array_view::<f32>().unwrap();
            let want = direct(weights, bias, x, (m, k, n));
            proptest::prop_assert_eq!(got.as_slice().unwrap(), &want[..]);
        }
    }
}

//! Depthwise convolution (one filter per channel, channels first) as whole-plane runs.
//!
//! MiniFASNet's depthwise layers are small planes (40x40 down to 5x5) where tract's
//! `DepthWise`, which walks each plane zone by zone, spends much of its time outside the
//! arithmetic. Here each plane is padded once and split by stride phase, after which every
//! kernel tap reads one contiguous run for the whole plane, and the outputs are summed 32
//! at a time in vector registers. `op_profile`: the depthwise layers of a MiniFASNet run
//! take about a fifth less time than tract's; YuNet's large planes about the same. Each
//! output is the bias plus the taps in row-major order (fused multiply-adds where the CPU
//! has them), so results differ from tract's only in rounding.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_hir::internal::*;

/// Replaces every eligible depthwise `Conv` of a decluttered model by [`PlaneDepthwise`].
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let Some(op) = PlaneDepthwise::for_conv(model, node, conv)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(&node.name, op, &[x])?[0];
        patch.shunt_outside(model, id.into(), out)?;
        patch.apply(model)?;
    }
    model.compact()
}

/// A depthwise convolution with its weights and bias held by the op.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct PlaneDepthwise {
    /// `[channels, kh * kw]`, row-major taps.
    kernel: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    kernel_hw: (usize, usize),
    stride: (usize, usize),
    /// Zero rows above and columns left of the input.
    pad_before: (usize, usize),
    /// Output height and width.
    out_hw: (usize, usize),
    layout: PhaseLayout,
}

impl PlaneDepthwise {
    /// The op for an f32 channels-first (NCHW, or CHW once tract drops the batch axis)
    /// depthwise `Conv` with constant weights, no dilation and a concrete input shape;
    /// `None` for any other convolution.
    fn for_conv(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let channels = spec.input_channels;
        let input = model.outlet_fact(node.inputs[0])?;
        let (Some(kernel), Some(bias)) = (
            model.outlet_fact(node.inputs[1])?.konst.clone(),
            model.outlet_fact(node.inputs[2])?.konst.clone(),
        ) else {
            return Ok(None);
        };
        let Some(shape) = input.shape.as_concrete() else {
            return Ok(None);
        };
        let eligible = conv.q_params.is_none()
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(
                (spec.data_format, shape.len()),
                (DataFormat::NCHW, 4) | (DataFormat::CHW, 3)
            )
            && conv.group == channels
            && spec.output_channels == channels
            && channels > 1
            && spec.kernel_shape.len() == 2
            && spec.dilations().iter().all(|&d| d == 1)
            && input.datum_type == f32::datum_type()
            && kernel.datum_type() == f32::datum_type()
            && bias.datum_type() == f32::datum_type()
            && kernel.len() == channels * spec.kernel_shape.iter().product::<usize>()
            && (bias.len() == channels || bias.len() == 1);
        if !eligible {
            return Ok(None);
        }
        let padding = spec.computed_padding(&shape[shape.len() - 2..]);
        let bias = if bias.len() == channels {
            bias.into_tensor().into_shape(&[channels])?
        } else {
            let b = bias.cast_to_scalar::<f32>()?;
            tract_ndarray::Array1::from_elem(channels, b).into_tensor()
        };
        let taps = spec.kernel_shape[0] * spec.kernel_shape[1];
        Ok(Some(PlaneDepthwise::new(
            kernel
                .into_tensor()
                .into_shape(&[channels, taps])?
                .into_arc_tensor(),
            bias.into_arc_tensor(),
            (spec.kernel_shape[0], spec.kernel_shape[1]),
            (spec.stride(0), spec.stride(1)),
            (padding[0].pad_before, padding[1].pad_before),
            (padding[0].convoluted, padding[1].convoluted),
        )))
    }

    fn new(
        kernel: Arc<Tensor>,
        bias: Arc<Tensor>,
        kernel_hw: (usize, usize),
        stride: (usize, usize),
        pad_before: (usize, usize),
        out_hw: (usize, usize),
    ) -> Self {
        PlaneDepthwise {
            kernel,
            bias,
            kernel_hw,
            stride,
            pad_before,
            out_hw,
            layout: PhaseLayout::new(kernel_hw, stride, out_hw),
        }
    }
}

impl Op for PlaneDepthwise {
    fn name(&self) -> StaticName {
        "PlaneDepthwise".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        let &[.., c, h, w] = shape else {
            bail!("PlaneDepthwise wants channels and a plane, got {shape:?}");
        };
        let (oh, ow) = self.out_hw;
        let mut out_shape = shape.to_vec();
        out_shape[shape.len() - 2..].copy_from_slice(&[oh, ow]);
        let mut output = Tensor::zero::<f32>(&out_shape)?;
        let input_plain = input.try_as_plain_ram()?;
        let src = input_plain.as_slice::<f32>()?;
        let kernel_plain = self.kernel.try_as_plain_ram()?;
        let kernel = kernel_plain.as_slice::<f32>()?;
        let bias_plain = self.bias.try_as_plain_ram()?;
        let bias = bias_plain.as_slice::<f32>()?;
        let mut output_plain = output.try_as_plain_ram_mut()?;
        let dst = output_plain.as_slice_mut::<f32>()?;
        let taps = self.kernel_hw.0 * self.kernel_hw.1;
        let mut scratch = self.layout.scratch(self.stride);
        if oh * ow > 0 && h * w > 0 {
            let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(oh * ow));
            for (i, (plane, out)) in planes.enumerate() {
                let ch = i % c;
                let taps = &kernel[ch * taps..][..taps];
                self.convolve_plane(plane, (h, w), taps, bias[ch], out, &mut scratch);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

/// `acc[i] = bias + sum over taps t of taps[t] * phases[starts[t] + i]`, in tap order:
/// 32 outputs at a time (four AVX registers, so the dependent adds of one tap overlap with
/// the next block's), then 8. `acc`'s length is a multiple of 8 (see [`PhaseLayout`]).
fn accumulate(acc: &mut [f32], bias: f32, phases: &[f32], starts: &[usize], taps: &[f32]) {
    let done = accumulate_blocks::<32>(acc, 0, bias, phases, starts, taps);
    accumulate_blocks::<8>(acc, done, bias, phases, starts, taps);
}

/// Fills whole blocks of `N` outputs from `from` on; returns where it stopped. A fixed-size
/// block is what the compiler turns into vector registers.
fn accumulate_blocks<const N: usize>(
    acc: &mut [f32],
    from: usize,
    bias: f32,
    phases: &[f32],
    starts: &[usize],
    taps: &[f32],
) -> usize {
    let whole = (acc.len() - from) / N * N;
    for (block, out) in acc[from..from + whole].chunks_exact_mut(N).enumerate() {
        let at = from + block * N;
        let mut sum = [bias; N];
        for (&start, &weight) in starts.iter().zip(taps) {
            let x: &[f32; N] = phases[start + at..][..N].try_into().expect("N values");
            for (s, &v) in sum.iter_mut().zip(x) {
                *s = multiply_add(*s, weight, v);
            }
        }
        out.copy_from_slice(&sum);
    }
    from + whole
}

/// `acc + weight * v`, fused where the CPU has FMA (x86-64-v3 builds); without it,
/// `mul_add` would be a slow software routine.
#[inline(always)]
fn multiply_add(acc: f32, weight: f32, v: f32) -> f32 {
    if cfg!(any(target_feature = "fma", target_arch = "aarch64")) {
        weight.mul_add(v, acc)
    } else {
        acc + weight * v
    }
}

/// Working buffers of one evaluation, sized and zeroed once and reused from plane to plane:
/// every plane writes the same positions, so the padding stays zero. MiniFASNet's planes
/// are small (1,728 of them in a run, most 10x10 or 5x5), so what is done per plane
/// rather than per output is most of the op's time.
struct Scratch {
    /// The zero-padded plane split by row and column phase (see `split_phases`), then
    /// zeros up to the last block's reads.
    phases: Vec<f32>,
    /// One zero-padded input row.
    row: Vec<f32>,
    /// Output rows at the phases' width, then up to a multiple of 8.
    acc: Vec<f32>,
}

/// Where one evaluation's phase planes lie; geometry only, the same for every plane.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct PhaseLayout {
    /// Height and width of each of the stride x stride phase planes.
    hw: (usize, usize),
    /// Where each tap's run starts in the phase planes, taps in row-major order.
    starts: Vec<usize>,
    /// Output values computed per plane, at the phases' width, rounded up to a multiple of
    /// 8 (the values past the last output are computed and dropped).
    len: usize,
}

impl PhaseLayout {
    fn new(kernel_hw: (usize, usize), (sy, sx): (usize, usize), (oh, ow): (usize, usize)) -> Self {
        let (kh, kw) = kernel_hw;
        // The padded extent the output reads, split by the stride.
        let ph = ((oh.max(1) - 1) * sy + kh).div_ceil(sy);
        let pw = ((ow.max(1) - 1) * sx + kw).div_ceil(sx);
        let starts = (0..kh)
            .flat_map(|ky| (0..kw).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| ((ky % sy) * sx + kx % sx) * ph * pw + (ky / sy) * pw + kx / sx)
            .collect();
        let len = ((oh.max(1) - 1) * pw + ow).next_multiple_of(8);
        PhaseLayout {
            hw: (ph, pw),
            starts,
            len,
        }
    }

    /// Zeroed buffers for one evaluation with strides `(sy, sx)`.
    fn scratch(&self, (sy, sx): (usize, usize)) -> Scratch {
        let (ph, pw) = self.hw;
        let reads = self.starts.iter().max().copied().unwrap_or(0) + self.len;
        Scratch {
            phases: vec![0.0; (sy * sx * ph * pw).max(reads)],
            row: vec![0.0; sx * pw],
            acc: vec![0.0; self.len],
        }
    }
}

impl PlaneDepthwise {
    /// Writes the convolution of one plane, plus `bias`, to `out`. The padded plane is
    /// split into stride x stride phase planes (the pixels whose row and column are equal
    /// modulo the stride): then every output pixel's tap reads the same phase at the same
    /// offset, and each tap is a multiply-add over a contiguous run, the whole plane long.
    fn convolve_plane(
        &self,
        plane: &[f32],
        (h, w): (usize, usize),
        taps: &[f32],
        bias: f32,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let layout = &self.layout;
        self.split_phases(plane, (h, w), scratch);
        accumulate(
            &mut scratch.acc,
            bias,
            &scratch.phases,
            &layout.starts,
            taps,
        );
        let (ow, pw) = (self.out_hw.1, layout.hw.1);
        for (row, acc) in out.chunks_exact_mut(ow).zip(scratch.acc.chunks(pw)) {
            row.copy_from_slice(&acc[..ow]);
        }
    }

    /// Writes the plane into `scratch.phases`'s phase planes, padded to the extent the
    /// output reads: phase `(py, px)` holds padded pixel `(py + r * sy, px + c * sx)` at
    /// `(r, c)`. Only the plane's own pixels are written; the padding is the buffers'
    /// zeros.
    fn split_phases(&self, plane: &[f32], (h, w): (usize, usize), scratch: &mut Scratch) {
        let (sy, sx) = self.stride;
        let (pt, pl) = self.pad_before;
        let (ph, pw) = self.layout.hw;
        let Scratch { phases, row, .. } = scratch;
        // Input columns that land inside the padded row; the rest of the row stays zero.
        let n = w.min((sx * pw).saturating_sub(pl));
        for y in 0..ph * sy {
            let Some(iy) = y.checked_sub(pt).filter(|&iy| iy < h) else {
                continue;
            };
            let src = &plane[iy * w..][..n];
            let (py, r) = (y % sy, y / sy);
            let block = &mut phases[py * sx * ph * pw..][..sx * ph * pw];
            if sx == 1 {
                block[r * pw + pl..][..n].copy_from_slice(src);
                continue;
            }
            row[pl..pl + n].copy_from_slice(src);
            match sx {
                2 => {
                    let (even, odd) = block.split_at_mut(ph * pw);
                    let pairs = row.chunks_exact(2);
                    let dst = even[r * pw..][..pw]
                        .iter_mut()
                        .zip(&mut odd[r * pw..][..pw]);
                    for ((e, o), pair) in dst.zip(pairs) {
                        (*e, *o) = (pair[0], pair[1]);
                    }
                }
                _ => {
                    for (px, phase) in block.chunks_exact_mut(ph * pw).enumerate() {
                        let dst = &mut phase[r * pw..][..pw];
                        for (d, &v) in dst.iter_mut().zip(row[px..].iter().step_by(sx)) {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

impl TypedOp for PlaneDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        let rank = shape.len();
        shape[rank - 2] = self.out_hw.0.to_dim();
        shape[rank - 1] = self.out_hw.1.to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition, one output at a time, for the strides, paddings and kernel
    /// sizes MiniFASNet and YuNet use, on odd and even planes.
    #[test]
    fn matches_the_direct_sum_for_every_geometry() {
        for (k, stride, pad, (h, w)) in [
            (3, 1, 1, (7, 9)),
            (3, 2, 1, (7, 9)),
            (3, 2, 1, (8, 6)),
            (5, 1, 0, (5, 5)),
            (3, 1, 0, (4, 6)),
            (1, 1, 0, (3, 3)),
        ] {
            let oh = (h + 2 * pad - k) / stride + 1;
            let ow = (w + 2 * pad - k) / stride + 1;
            let op = PlaneDepthwise::new(
                tensor0(0f32).into_arc_tensor(),
                tensor0(0f32).into_arc_tensor(),
                (k, k),
                (stride, stride),
                (pad, pad),
                (oh, ow),
            );
            let taps: Vec<f32> = (0..k * k).map(|i| i as f32 * 0.25 - 1.0).collect();
            // Planes in a row through one scratch, as an evaluation runs them: each must
            // see zeros where the padding is, whatever the plane before held.
            let mut scratch = op.layout.scratch((stride, stride));
            for seed in [37, 11, 5] {
                let plane: Vec<f32> = (0..h * w)
                    .map(|i| ((i * seed) % 23) as f32 - 11.0)
                    .collect();
                let mut out = vec![f32::NAN; oh * ow];
                op.convolve_plane(&plane, (h, w), &taps, 0.5, &mut out, &mut scratch);
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut want = 0.5;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * stride + ky) as isize - pad as isize;
                                let ix = (ox * stride + kx) as isize - pad as isize;
                                if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                    want +=
                                        taps[ky * k + kx] * plane[iy as usize * w + ix as usize];
                                }
                            }
                        }
                        let got = out[oy * ow + ox];
                        let at = format!("k{k} s{stride} p{pad} {h}x{w} seed {seed} ({ox}, {oy})");
                        assert_eq!(got, want, "{at}");
                    }
                }
            }
        }
    }
}

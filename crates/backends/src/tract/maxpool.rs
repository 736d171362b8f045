//! ONNX `MaxPool` with a 2x2 window and stride 2, no padding, as one pass per plane.
//!
//! YuNet pools four times this way. tract's pooling handles any window with a bounds check
//! on every tap, and took 8.6 of YuNet's 40 ms at 640x480 (`op_profile`). Every window of
//! this pool lies inside the input (the last row or column of an odd size is dropped, as
//! ONNX's floor mode says), so the maximum of four values needs no checks and vectorises.
//! The values picked are the same (`f32::max`, as tract's own kernel), so the outputs are
//! bit-identical. Other pools, index outputs and symbolic shapes keep tract's operator.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::cnn::{HirMaxPool, PaddingSpec, PoolSpec};
use tract_onnx::tract_hir::ops::nn::DataFormat;

/// The op-register entry for ONNX `MaxPool`.
pub fn max_pool(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    if is_pair_pool(node)? {
        let spec = PoolSpec::new(
            DataFormat::NCHW,
            tvec![2, 2],
            PaddingSpec::Valid,
            None,
            Some(tvec![2, 2]),
            0,
            0,
        );
        return Ok((expand(PairMaxPool(HirMaxPool::new(spec, None))), vec![]));
    }
    let stock = tract_onnx::onnx().op_register.0["MaxPool"];
    stock(ctx, node)
}

/// 2x2 window, stride 2, no padding, no dilation, floor mode, no index output.
fn is_pair_pool(node: &NodeProto) -> TractResult<bool> {
    let ints = |name: &str| -> TractResult<Option<Vec<i64>>> {
        Ok(node.get_attr_opt_tvec::<i64>(name)?.map(|v| v.to_vec()))
    };
    let none_or = |v: Option<Vec<i64>>, want: &[i64]| v.is_none_or(|v| v == want);
    let auto_pad = node.get_attr_opt::<&str>("auto_pad")?.unwrap_or("NOTSET");
    Ok(node.output.len() == 1
        && ints("kernel_shape")?.as_deref() == Some(&[2, 2][..])
        && ints("strides")? == Some(vec![2, 2])
        && none_or(ints("pads")?, &[0, 0, 0, 0])
        && none_or(ints("dilations")?, &[1, 1])
        && node.get_attr_opt::<i64>("ceil_mode")?.unwrap_or(0) == 0
        && matches!(auto_pad, "NOTSET" | "VALID"))
}

/// Wires [`PairMax`] for an f32 input of known rank 4, tract's pool otherwise.
#[derive(Debug, Clone, Hash)]
struct PairMaxPool(HirMaxPool);

impl Expansion for PairMaxPool {
    fn name(&self) -> StaticName {
        "PairMaxPool".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        self.0.rules(s, inputs, outputs)
    }

    fn wire(
        &self,
        name: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?;
        if fact.datum_type == f32::datum_type() && fact.rank() == 4 {
            model.wire_node(name, PairMax, &[inputs[0]])
        } else {
            self.0.wire(name, model, inputs)
        }
    }
}

/// Max over each 2x2 block of every NCHW plane; the output is half the size, floored.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct PairMax;

impl Op for PairMax {
    fn name(&self) -> StaticName {
        "PairMax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PairMax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let &[n, c, h, w] = input.shape() else {
            bail!("PairMax wants a rank-4 input, got {:?}", input.shape());
        };
        let (oh, ow) = (h / 2, w / 2);
        let mut output = Tensor::zero::<f32>(&[n, c, oh, ow])?;
        let input_plain = input.try_as_plain_ram()?;
        let src = input_plain.as_slice::<f32>()?;
        let mut output_plain = output.try_as_plain_ram_mut()?;
        let dst = output_plain.as_slice_mut::<f32>()?;
        if oh * ow > 0 {
            for (plane, out) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(oh * ow)) {
                pool_plane(plane, w, out, ow);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

fn pool_plane(plane: &[f32], w: usize, out: &mut [f32], ow: usize) {
    for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
        let top = &plane[2 * oy * w..][..2 * ow];
        let bottom = &plane[(2 * oy + 1) * w..][..2 * ow];
        for ((o, t), b) in row
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            *o = t[0].max(t[1]).max(b[0].max(b[1]));
        }
    }
}

impl TypedOp for PairMax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let half = |d: &TDim| d.clone() / 2;
        Ok(tvec!(f32::fact([
            shape[0].clone(),
            shape[1].clone(),
            half(&shape[2]),
            half(&shape[3]),
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::pool_plane;

    /// Odd sizes: ONNX's floor mode drops the last row and column.
    #[test]
    fn pools_every_whole_window_of_an_odd_plane() {
        let (w, h) = (7, 5);
        let plane: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        let (ow, oh) = (w / 2, h / 2);
        let mut out = vec![0.0; ow * oh];
        pool_plane(&plane, w, &mut out, ow);
        for oy in 0..oh {
            for ox in 0..ow {
                let at = |y: usize, x: usize| plane[(2 * oy + y) * w + 2 * ox + x];
                let want = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)]
                    .into_iter()
                    .fold(f32::MIN, f32::max);
                assert_eq!(out[oy * ow + ox], want, "({ox}, {oy})");
            }
        }
    }
}

//! 1x1 convolutions (channels first, stride 1) planned as one matrix product.
//!
//! tract declutters a 1x1 `Conv` into an `EinSum` of the constant `[out, in]` weights and
//! the activation, plus a bias `Add`, and runs it through its general matrix kernels, which
//! first pack the activation. MiniFASNet's 1x1 layers are small (13 to 512 channels over
//! 40x40 down to 5x5 planes) and carry 75 of its 81 MFLOP. This file finds those products
//! in a decluttered graph (reading tract 0.23's `EinSum` axes) and replaces each, with its
//! bias, by [`Pointwise`], whose arithmetic is `kernels/pointwise.rs`: the weights packed
//! once at plan build, the activation read where it lies. On the dev set every output is
//! identical to tract's.
//!
//! The op runs on every CPU (the plain definition where there is no AVX-512F); the rewrite
//! plans it only where the CPU running the plan has AVX-512F, elsewhere tract's kernels
//! are faster and stay.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_hir::internal::*;

use super::kernels::pointwise::{pack, Path, Product};

/// Replaces every eligible 1x1 convolution of a decluttered model (its `EinSum` and the
/// bias `Add` after it) by [`Pointwise`]; leaves the model as it is on a CPU without
/// AVX-512F.
pub fn rewrite(model: &mut TypedModel) -> TractResult<()> {
    if Path::best() == Path::Plain {
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
    /// The weights by tiles of `kernels::pointwise::ROWS` output channels: `[tile][in][row]`, rows past the
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
            packed: tensor1(&pack(w_plain.as_slice::<f32>()?, out_channels, in_channels))
                .into_arc_tensor(),
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
        product.multiply(Path::best(), x, out_plain.as_slice_mut::<f32>()?);
        Ok(output)
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The op's evaluation, whatever path this CPU takes, is the definition: shapes with a
    /// short last tile (the kernels' own tests cover every shape and path).
    #[test]
    fn the_op_evaluates_the_definition() {
        let (m, k, n) = (13, 5, 37);
        let weights: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.4)
            .collect();
        let bias: Vec<f32> = (0..m).map(|o| o as f32 * 0.5 - 2.0).collect();
        let x: Vec<f32> = (0..k * n).map(|i| ((i * 13) % 17) as f32 - 8.25).collect();
        let op = Pointwise {
            packed: tensor1(&pack(&weights, m, k)).into_arc_tensor(),
            bias: tensor1(&bias).into_arc_tensor(),
            out_channels: m,
            in_channels: k,
            output_shape: tvec![1, m, n],
        };
        let got = op.apply(&x).unwrap();
        let got = got.to_plain_array_view::<f32>().unwrap();
        assert_eq!(got.shape(), &[1, m, n]);
        for o in 0..m {
            for p in 0..n {
                let sum = (0..k).fold(0f32, |s, i| weights[o * k + i].mul_add(x[i * n + p], s));
                assert_eq!(got[[0, o, p]], sum + bias[o], "at ({o}, {p})");
            }
        }
    }

    /// Too few activation values for the output is an evaluation error, not a panic.
    #[test]
    fn an_activation_that_does_not_fit_is_an_error() {
        let op = Pointwise {
            packed: tensor1(&pack(&[1.0; 6], 2, 3)).into_arc_tensor(),
            bias: tensor1(&[0.0f32; 2]).into_arc_tensor(),
            out_channels: 2,
            in_channels: 3,
            output_shape: tvec![1, 2, 4],
        };
        assert!(op.apply(&[1.0; 9]).is_err());
    }
}

//! PReLU for tract as `max(x, 0) + slope * min(x, 0)`.
//!
//! tract-onnx expands ONNX `PRelu` into compare, multiply and select (a boolean tensor in
//! between), which took about 60% of a MiniFASNet run. The form here is the same function,
//! exactly, for any slope (one of the two terms is a zero). With a constant slope per
//! channel (every PReLU of MiniFASNet) it is one op, [`ChannelPrelu`], that rewrites its
//! input in place; tract's own float ops, which it fuses into two chained passes over the
//! tensor, do the rest.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::math;
use tract_onnx::tract_hir::internal::*;

/// The op-register entry for ONNX `PRelu`.
pub fn prelu(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(SplitPrelu), vec![]))
}

#[derive(Debug, Clone, Hash)]
struct SplitPrelu;

impl Expansion for SplitPrelu {
    fn name(&self) -> StaticName {
        "SplitPrelu".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        name: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let x = inputs[0];
        let mut slope = inputs[1];
        if let Some(op) = ChannelPrelu::for_inputs(model, x, slope)? {
            return model.wire_node(name, op, &[x]);
        }
        let rank = model.outlet_fact(x)?.rank();
        // ONNX broadcasts the slope from the right; tract's binary ops want equal ranks.
        while model.outlet_fact(slope)?.rank() < rank {
            slope = model.wire_node(
                format!("{name}.add-axis-{}", model.outlet_fact(slope)?.rank()),
                AxisOp::Add(0),
                &[slope],
            )?[0];
        }
        let zero = tensor0(0.0)
            .cast_to_dt(model.outlet_fact(x)?.datum_type)?
            .into_owned()
            .broadcast_into_rank(rank)?;
        let zero = model.add_const(format!("{name}.zero"), zero)?;
        let pos = model.wire_node(format!("{name}.pos"), math::max(), &[x, zero])?[0];
        let neg = model.wire_node(format!("{name}.neg"), math::min(), &[x, zero])?[0];
        let neg = model.wire_node(format!("{name}.mul"), math::mul(), &[neg, slope])?[0];
        model.wire_node(format!("{name}.add"), math::add(), &[pos, neg])
    }
}

/// PReLU with one constant slope per channel (axis 1) or one for all, in a single pass.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct ChannelPrelu {
    /// `[channels]`, or `[1]` for a shared slope.
    slopes: Arc<Tensor>,
}

impl ChannelPrelu {
    /// The op when `x` is f32 of rank 2 or more and `slope` a constant that varies only
    /// along axis 1 (as ONNX broadcasts it from the right).
    fn for_inputs(model: &TypedModel, x: OutletId, slope: OutletId) -> TractResult<Option<Self>> {
        let (xf, sf) = (model.outlet_fact(x)?, model.outlet_fact(slope)?);
        let Some(konst) = sf.konst.clone() else {
            return Ok(None);
        };
        let rank = xf.rank();
        if xf.datum_type != f32::datum_type() || konst.datum_type() != f32::datum_type() {
            return Ok(None);
        }
        if rank < 2 || konst.rank() > rank {
            return Ok(None);
        }
        // The slope's dims aligned to x's from the right; all 1 but perhaps axis 1.
        let lead = rank - konst.rank();
        let dims: TVec<usize> = (0..rank)
            .map(|axis| {
                if axis < lead {
                    1
                } else {
                    konst.shape()[axis - lead]
                }
            })
            .collect();
        if (0..rank).any(|axis| axis != 1 && dims[axis] != 1) {
            return Ok(None);
        }
        let slopes = konst.into_tensor().into_shape(&[dims[1]])?;
        Ok(Some(ChannelPrelu {
            slopes: slopes.into_arc_tensor(),
        }))
    }
}

impl Op for ChannelPrelu {
    fn name(&self) -> StaticName {
        "ChannelPrelu".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ChannelPrelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut x = args_1!(inputs).into_tensor();
        let shape = x.shape().to_vec();
        let slopes_plain = self.slopes.try_as_plain_ram()?;
        let slopes = slopes_plain.as_slice::<f32>()?;
        // Values per channel plane: everything after axis 1.
        let plane = shape[2..].iter().product::<usize>();
        let mut plain = x.try_as_plain_ram_mut()?;
        let values = plain.as_slice_mut::<f32>()?;
        if plane > 0 {
            for (i, chunk) in values.chunks_exact_mut(plane).enumerate() {
                let slope = slopes[if slopes.len() == 1 { 0 } else { i % shape[1] }];
                for v in chunk {
                    *v = v.max(0.0) + slope * v.min(0.0);
                }
            }
        }
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for ChannelPrelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

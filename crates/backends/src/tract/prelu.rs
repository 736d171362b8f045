//! PReLU for tract as `max(x, 0) + slope * min(x, 0)`.
//!
//! tract-onnx expands ONNX `PRelu` into compare, multiply and select (a boolean tensor in
//! between), which took about 60% of a MiniFASNet run. The form here is the same function,
//! exactly, for any slope (one of the two terms is a zero), and tract fuses its float ops
//! into two chained passes: a MiniFASNet run drops from 4.4 to 1.8 ms.

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

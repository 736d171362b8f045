//! tract-onnx: the embedded default engine.

mod depthwise;
mod kernels;
mod maxpool;
mod pointwise;
mod prelu;

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::{Backend, BackendError, Model, Tensor};

pub struct TractBackend;

/// The ONNX loader facelive runs models with: tract-onnx with its own PReLU and 2x2 MaxPool,
/// and both ignore flags (YuNet's value_info bakes in 640x640, and models with a symbolic
/// batch dimension otherwise fail to unify: see the models manifest).
fn onnx_loader() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    onnx.op_register.insert("PRelu", prelu::prelu);
    onnx.op_register.insert("MaxPool", maxpool::max_pool);
    onnx.with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
}

/// The model at `path` for a fixed input shape, optimised with facelive's own operators:
/// the loader's, then its depthwise convolution in place of tract's, and where the CPU has
/// AVX-512F its 1x1 convolution.
pub fn optimized_model(path: &Path, input_shape: &[usize]) -> TractResult<TypedModel> {
    optimize(onnx_loader().model_for_path(path)?, input_shape)
}

fn optimize(model: InferenceModel, input_shape: &[usize]) -> TractResult<TypedModel> {
    let mut model = model
        .with_input_fact(0, f32::fact(input_shape).into())?
        .into_typed()?
        .into_decluttered()?;
    depthwise::rewrite(&mut model)?;
    pointwise::rewrite(&mut model)?;
    model.into_optimized()
}

struct TractModel {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
    output_names: Vec<String>,
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn load_with_outputs(
        &self,
        path: &Path,
        input_shape: &[usize],
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Model>, BackendError> {
        let load_err = |e: TractError| BackendError::Load {
            path: path.display().to_string(),
            reason: format!("{e:#}"),
        };
        let model = if extra_outputs.is_empty() {
            optimized_model(path, input_shape)
        } else {
            let bytes = std::fs::read(path).map_err(|e| load_err(e.into()))?;
            let edited = crate::onnx::with_outputs(&bytes, extra_outputs)
                .map_err(|e| load_err(TractError::msg(e)))?;
            onnx_loader()
                .model_for_read(&mut edited.as_slice())
                .and_then(|m| optimize(m, input_shape))
        }
        .map_err(load_err)?;
        let output_names = model
            .output_outlets()
            .map_err(load_err)?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .unwrap_or(&model.node(o.node).name)
                    .to_string()
            })
            .collect::<Vec<_>>();
        let plan = model.into_runnable().map_err(load_err)?;
        Ok(Arc::new(TractModel {
            plan,
            input_shape: input_shape.to_vec(),
            output_names,
        }))
    }
}

impl Model for TractModel {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_names(&self) -> &[String] {
        &self.output_names
    }

    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, BackendError> {
        if input.shape != self.input_shape {
            return Err(BackendError::Shape(format!(
                "plan expects {:?}, got {:?}",
                self.input_shape, input.shape
            )));
        }
        let t = tract_ndarray::ArrayD::from_shape_vec(input.shape, input.data)
            .map_err(|e| BackendError::Shape(e.to_string()))?;
        let outputs = self
            .plan
            .run(tvec!(t.into_tvalue()))
            .map_err(|e| BackendError::Run(format!("{e:#}")))?;
        outputs
            .into_iter()
            .map(|v| {
                let view = v
                    .to_plain_array_view::<f32>()
                    .map_err(|e| BackendError::Run(format!("{e:#}")))?;
                Ok(Tensor {
                    shape: view.shape().to_vec(),
                    data: view.iter().copied().collect(),
                })
            })
            .collect()
    }
}

//! In-memory edits and reads of ONNX files that both engines share: naming an inner tensor
//! as an extra output (a judge's features, computed by the same run as its score), and
//! reading a weight (initializer) by name.

use std::path::Path;

use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{type_proto, GraphProto, ModelProto, TensorProto, TypeProto, ValueInfoProto};

use crate::{BackendError, Tensor};

pub(crate) fn decode(bytes: &[u8]) -> Result<ModelProto, String> {
    ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model: {e}"))
}

fn graph(model: &mut ModelProto) -> Result<&mut GraphProto, String> {
    model
        .graph
        .as_mut()
        .ok_or_else(|| "the ONNX file has no graph".to_string())
}

/// The model with the inner tensors `names` added, in order, after its own outputs. Each
/// must be the output of one of its nodes.
pub fn with_outputs(bytes: &[u8], names: &[String]) -> Result<Vec<u8>, String> {
    let mut model = decode(bytes)?;
    let g = graph(&mut model)?;
    for name in names {
        if !g.node.iter().any(|n| n.output.contains(name)) {
            return Err(format!(
                "no node of the graph outputs a tensor named {name:?}"
            ));
        }
        if g.output.iter().any(|o| &o.name == name) {
            continue;
        }
        g.output.push(ValueInfoProto {
            name: name.clone(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Ok(model.encode_to_vec())
}

/// The `f32` weight called `name` in the ONNX file at `path`.
pub fn initializer(path: &Path, name: &str) -> Result<Tensor, BackendError> {
    let err = |reason: String| BackendError::Load {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut model = decode(&bytes).map_err(err)?;
    let g = graph(&mut model).map_err(err)?;
    let t = g
        .initializer
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| err(format!("no weight named {name:?}")))?;
    tensor_values(t).map_err(err).and_then(|data| {
        let shape = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        Tensor::new(shape, data)
    })
}

fn tensor_values(t: &TensorProto) -> Result<Vec<f32>, String> {
    if t.data_type != DataType::Float as i32 {
        return Err(format!("weight {} is not f32", t.name));
    }
    if !t.float_data.is_empty() {
        return Ok(t.float_data.clone());
    }
    if !t.raw_data.len().is_multiple_of(4) {
        return Err(format!("weight {} has a partial value", t.name));
    }
    Ok(t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

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

/// The ONNX file at `path`, decoded, with errors that name it.
fn read_model(path: &Path) -> Result<ModelProto, BackendError> {
    let err = |reason: String| BackendError::Load {
        path: path.display().to_string(),
        reason,
    };
    decode(&std::fs::read(path).map_err(|e| err(e.to_string()))?).map_err(err)
}

/// The `f32` weight called `name` in `g`, or `None` when no weight has that name.
fn weight(g: &GraphProto, name: &str) -> Option<Result<Tensor, String>> {
    let t = g.initializer.iter().find(|t| t.name == name)?;
    let shape = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    Some(tensor_values(t).and_then(|data| Tensor::new(shape, data).map_err(|e| e.to_string())))
}

/// The `f32` weight called `name` in the ONNX file at `path`.
pub fn initializer(path: &Path, name: &str) -> Result<Tensor, BackendError> {
    let err = |reason: String| BackendError::Load {
        path: path.display().to_string(),
        reason,
    };
    let mut model = read_model(path)?;
    let g = graph(&mut model).map_err(err)?;
    weight(g, name)
        .unwrap_or_else(|| Err(format!("no weight named {name:?}")))
        .map_err(err)
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

/// One operation of a graph's last layers, with its weights: what fine-tuning reads.
#[derive(Debug, Clone)]
pub enum TailOp {
    /// A convolution with no padding and stride 1; `group` > 1 for a depthwise one.
    Conv {
        weight: Tensor,
        bias: Option<Tensor>,
        group: usize,
    },
    PRelu {
        slope: Tensor,
    },
    Flatten,
    /// Input times `weight` (`[in, out]`).
    MatMul {
        weight: Tensor,
    },
    BatchNorm {
        scale: Tensor,
        bias: Tensor,
        mean: Tensor,
        var: Tensor,
        epsilon: f32,
    },
}

/// The operations from the tensor `from` to the graph's output, in order, each the single
/// reader of the one before (a chain), with their weights. Anything else is refused: the
/// tail is trained outside the engine and must mean exactly what the graph computes.
pub fn tail(path: &Path, from: &str) -> Result<Vec<TailOp>, BackendError> {
    let err = |reason: String| BackendError::Load {
        path: path.display().to_string(),
        reason,
    };
    let mut model = read_model(path)?;
    let g = graph(&mut model).map_err(err)?;
    let mut ops = Vec::new();
    let mut current = from.to_string();
    while !g.output.iter().any(|o| o.name == current) {
        let readers: Vec<_> = g
            .node
            .iter()
            .filter(|n| n.input.contains(&current))
            .collect();
        let [node] = readers.as_slice() else {
            return Err(err(format!(
                "{current:?} is read by {} nodes: the tail is not a chain",
                readers.len()
            )));
        };
        ops.push(tail_op(g, node).map_err(err)?);
        current = node.output.first().cloned().unwrap_or_default();
    }
    Ok(ops)
}

fn tail_op(g: &GraphProto, node: &tract_onnx::pb::NodeProto) -> Result<TailOp, String> {
    let input_weight = |i: usize| -> Result<Tensor, String> {
        let name = node
            .input
            .get(i)
            .ok_or(format!("{} has no input {i}", node.name))?;
        weight(g, name)
            .unwrap_or_else(|| Err(format!("{}'s input {name:?} is not a weight", node.name)))
    };
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    Ok(match node.op_type.as_str() {
        "Conv" => {
            let plain = ["pads", "strides", "dilations"].iter().all(|a| {
                attr(a).is_none_or(|a| {
                    a.ints
                        .iter()
                        .all(|&v| v == if a.name == "pads" { 0 } else { 1 })
                })
            });
            if !plain {
                return Err(format!("{} pads, strides or dilates", node.name));
            }
            TailOp::Conv {
                weight: input_weight(1)?,
                bias: if node.input.len() > 2 {
                    Some(input_weight(2)?)
                } else {
                    None
                },
                group: attr("group").map_or(1, |a| a.i.max(1) as usize),
            }
        }
        "PRelu" => TailOp::PRelu {
            slope: input_weight(1)?,
        },
        "Flatten" => TailOp::Flatten,
        "MatMul" => TailOp::MatMul {
            weight: input_weight(1)?,
        },
        "BatchNormalization" => TailOp::BatchNorm {
            scale: input_weight(1)?,
            bias: input_weight(2)?,
            mean: input_weight(3)?,
            var: input_weight(4)?,
            epsilon: attr("epsilon").map_or(1e-5, |a| a.f),
        },
        other => {
            return Err(format!(
                "{} is a {other}, which the tail cannot hold",
                node.name
            ))
        }
    })
}

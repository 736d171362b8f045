//! The in-memory ONNX edit that lets ONNX Runtime run a model at shapes other than the one
//! it declares: the data input's height and width become symbolic, and every other declared
//! shape (value_info, outputs) is dropped so ORT infers them from the input it is given.

use prost::Message;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{type_proto, GraphProto, ValueInfoProto};

use crate::onnx::decode;

/// The data input: the first graph input that is not a weight (old exporters list weights
/// among the inputs too).
fn data_input(graph: &mut GraphProto) -> Result<&mut ValueInfoProto, String> {
    let weights: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    graph
        .input
        .iter_mut()
        .find(|i| !weights.contains(&i.name))
        .ok_or_else(|| "the graph has no data input".to_string())
}

fn dims(input: &mut ValueInfoProto) -> Result<&mut Vec<Dimension>, String> {
    match input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        Some(type_proto::Value::TensorType(t)) => Ok(&mut t.shape.get_or_insert_default().dim),
        _ => Err(format!("input {} is not a tensor", input.name)),
    }
}

/// The input shape the model declares; 0 for a symbolic or missing dimension.
pub(super) fn declared_input_shape(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let mut model = decode(bytes)?;
    let graph = model.graph.as_mut().ok_or("the ONNX file has no graph")?;
    Ok(dims(data_input(graph)?)?
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) => v.max(0) as usize,
            _ => 0,
        })
        .collect())
}

/// The model with its NCHW input's height and width symbolic and no other shape declared.
pub(super) fn with_symbolic_input(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut model = decode(bytes)?;
    let graph = model.graph.as_mut().ok_or("the ONNX file has no graph")?;
    let dims = dims(data_input(graph)?)?;
    if dims.len() != 4 {
        return Err(format!(
            "expected an NCHW input, got {} dimensions",
            dims.len()
        ));
    }
    for (d, name) in dims[2..].iter_mut().zip(["height", "width"]) {
        d.value = Some(dimension::Value::DimParam(name.into()));
    }
    graph.value_info.clear();
    for out in &mut graph.output {
        if let Some(type_proto::Value::TensorType(t)) =
            out.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.shape = None;
        }
    }
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yunet_declares_640_and_becomes_symbolic() {
        let path = facelive_testdata::models_dir().join("yunet_2023mar.onnx");
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(declared_input_shape(&bytes).unwrap(), [1, 3, 640, 640]);
        let edited = with_symbolic_input(&bytes).unwrap();
        assert_eq!(declared_input_shape(&edited).unwrap(), [1, 3, 0, 0]);
        let m = decode(&edited).unwrap();
        let g = m.graph.unwrap();
        assert!(g.value_info.is_empty());
        assert_eq!(
            g.node.len(),
            decode(&bytes).unwrap().graph.unwrap().node.len()
        );
    }

    #[test]
    fn bytes_that_are_not_onnx_are_refused() {
        assert!(declared_input_shape(b"not a model at all").is_err());
    }
}

//! The tract backend's PReLU (crates/backends/src/tract/prelu.rs) against tract-onnx's own
//! expansion: both anti-spoof models, fed real face pixels, give bit-identical logits.

use facelive_backends::{Backend, Tensor, TractBackend};
use tract_onnx::prelude::*;

/// An 80x80 BGR planar input from a real face-crop image of the dev set, sampled by nearest
/// pixel (any real pixels will do: the two graphs must agree on them exactly).
fn face_input() -> Vec<f32> {
    let bytes = facelive_testdata::read("live/crop_nuredinali_18.png");
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut out = vec![0f32; 3 * 80 * 80];
    for y in 0..80 {
        for x in 0..80 {
            let p = ((y * h / 80) * w + x * w / 80) * ch;
            for c in 0..3 {
                // BGR planes: blue first.
                out[c * 6400 + y * 80 + x] = buf[p + 2 - c] as f32;
            }
        }
    }
    out
}

fn stock_tract(path: &std::path::Path, input: &[f32]) -> Vec<f32> {
    let plan = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, 80, 80]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_ndarray::ArrayD::from_shape_vec(vec![1, 3, 80, 80], input.to_vec()).unwrap();
    let out = plan.run(tvec!(t.into_tvalue())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

#[test]
fn prelu_rewrite_gives_the_same_logits_as_tracts_expansion() {
    let input = face_input();
    for file in [
        "minifasnet_v2_80x80_s2.7.onnx",
        "minifasnet_v1se_80x80_s4.0.onnx",
    ] {
        let path = facelive_testdata::models_dir().join(file);
        let ours = TractBackend
            .load(&path, &[1, 3, 80, 80])
            .unwrap()
            .run(Tensor::new(vec![1, 3, 80, 80], input.clone()).unwrap())
            .unwrap();
        let stock = stock_tract(&path, &input);
        assert_eq!(ours[0].data.len(), 3, "{file}");
        assert_eq!(ours[0].data, stock, "{file}: logits differ");
        // Real pixels make a real decision: the logits are not all alike.
        assert!(
            stock.iter().any(|v| (v - stock[0]).abs() > 0.1),
            "{file}: {stock:?}"
        );
    }
}

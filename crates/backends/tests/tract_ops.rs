//! The tract backend's own operators (crates/backends/src/tract/: PReLU, 2x2 MaxPool,
//! depthwise convolution, and on AVX-512 CPUs the 1x1 convolutions) against stock
//! tract-onnx: both anti-spoof models and the detector, fed real face pixels, give the same
//! outputs up to float rounding (the depthwise sums add in another order, with fused
//! multiply-adds).

use facelive_backends::{Backend, Tensor, TractBackend};
use tract_onnx::prelude::*;

/// A `width` x `height` BGR planar input from a real face-crop image of the dev set, sampled
/// by nearest pixel (any real pixels will do: the two graphs must agree on them exactly).
fn face_input(width: usize, height: usize) -> Vec<f32> {
    let bytes = facelive_testdata::read("live/crop_nuredinali_18.png");
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let plane = width * height;
    let mut out = vec![0f32; 3 * plane];
    for y in 0..height {
        for x in 0..width {
            let p = ((y * h / height) * w + x * w / width) * ch;
            for c in 0..3 {
                // BGR planes: blue first.
                out[c * plane + y * width + x] = buf[p + 2 - c] as f32;
            }
        }
    }
    out
}

/// Every output of `path` run by stock tract-onnx on `input` of `shape`.
fn stock_tract(path: &std::path::Path, shape: &[usize], input: &[f32]) -> Vec<Vec<f32>> {
    let plan = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), input.to_vec()).unwrap();
    let out = plan.run(tvec!(t.into_tvalue())).unwrap();
    out.iter()
        .map(|o| {
            o.to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

/// The largest difference between two outputs, relative to the largest magnitude in `want`.
fn relative_gap(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let gap = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    gap / scale
}

/// Rounding only (measured: up to 1e-6 on the logits, 1e-4 on YuNet's objectness after
/// some forty layers); a wrong tap, slope or window moves outputs by far more.
const ROUNDING: f32 = 5e-4;

/// The comparison covers the 1x1 operator: the plan has it wherever the CPU has AVX-512F
/// (and only there).
fn assert_pointwise_where_the_cpu_runs_it(path: &std::path::Path, shape: &[usize]) {
    let model = facelive_backends::optimized_model(path, shape).unwrap();
    let ops = model
        .nodes()
        .iter()
        .filter(|n| n.op().name() == "Pointwise")
        .count();
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    assert_eq!(ops > 0, avx512, "{}: {ops} 1x1 operators", path.display());
}

#[test]
fn own_operators_give_the_logits_of_tracts_operators() {
    let input = face_input(80, 80);
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
        let stock = stock_tract(&path, &[1, 3, 80, 80], &input).remove(0);
        assert_eq!(ours[0].data.len(), 3, "{file}");
        assert_pointwise_where_the_cpu_runs_it(&path, &[1, 3, 80, 80]);
        let gap = relative_gap(&ours[0].data, &stock);
        assert!(
            gap <= ROUNDING,
            "{file}: logits differ by {gap} of their scale"
        );
        // Real pixels make a real decision: the logits are not all alike.
        assert!(
            stock.iter().any(|v| (v - stock[0]).abs() > 0.1),
            "{file}: {stock:?}"
        );
    }
}

#[test]
fn own_operators_give_the_detections_of_tracts_operators() {
    let path = facelive_testdata::models_dir().join("yunet_2023mar.onnx");
    // A landscape and a portrait canvas: the pools see planes of both orientations.
    for (w, h) in [(640, 480), (320, 416)] {
        let shape = [1, 3, h, w];
        let input = face_input(w, h);
        let ours = TractBackend
            .load(&path, &shape)
            .unwrap()
            .run(Tensor::new(shape.to_vec(), input.clone()).unwrap())
            .unwrap();
        let stock = stock_tract(&path, &shape, &input);
        assert_eq!(ours.len(), 12, "{w}x{h}: YuNet has 12 outputs");
        assert_pointwise_where_the_cpu_runs_it(&path, &shape);
        for (i, (ours, stock)) in ours.iter().zip(&stock).enumerate() {
            let gap = relative_gap(&ours.data, stock);
            assert!(
                gap <= ROUNDING,
                "{w}x{h}: output {i} differs by {gap} of its scale"
            );
        }
        // The face is found: some objectness (outputs 3 to 5, one per stride) is high.
        let best = ours[3..6]
            .iter()
            .flat_map(|o| o.data.iter().copied())
            .fold(0f32, f32::max);
        assert!(best > 0.5, "{w}x{h}: best objectness {best}");
    }
}

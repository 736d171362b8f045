//! Where a model's time goes in tract, by operator (docs/BENCHMARKS.md).
//!
//!     cargo run --release --workspace --example op_profile -- MODEL.onnx 1,3,80,80 [--stock]
//!
//! Loads MODEL with facelive's loader (or stock tract-onnx with `--stock`), fixes the input
//! shape, runs it 3 times to warm up and 20 times measured on one thread, and prints the mean
//! run time and the mean time per operator type.

use std::collections::HashMap;
use std::time::Instant;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{eval, SimpleState};

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(shape)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: op_profile MODEL.onnx N,C,H,W [--stock]");
        std::process::exit(2);
    };
    let shape: Vec<usize> = shape
        .split(',')
        .map(|v| v.parse())
        .collect::<Result<_, _>>()?;
    let model = if args.iter().any(|a| a == "--stock") {
        tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(path)?
            .with_input_fact(0, f32::fact(&shape).into())?
            .into_optimized()?
    } else {
        facelive_backends::optimized_model(path.as_ref(), &shape)?
    };
    let plan = model.into_runnable()?;
    // A mid-grey input: operator times do not depend on the values.
    let input: Tensor = tract_ndarray::ArrayD::<f32>::from_elem(shape.clone(), 128.0).into();
    let (warm, runs) = (3, 20);
    let mut by_op: HashMap<String, f64> = HashMap::new();
    let mut total = 0.0;
    for i in 0..warm + runs {
        let mut state = SimpleState::new(&plan)?;
        let start = Instant::now();
        state.run_plan_with_eval(tvec!(input.clone().into_tvalue()), |s, st, node, inp| {
            let t = Instant::now();
            let out = eval(s, st, node, inp);
            if i >= warm {
                *by_op.entry(node.op().name().to_string()).or_default() +=
                    t.elapsed().as_secs_f64();
            }
            out
        })?;
        if i >= warm {
            total += start.elapsed().as_secs_f64();
        }
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "{path} {shape:?}: {:.2} ms per run",
        total / runs as f64 * 1e3
    );
    for (op, t) in ops.iter().take(10) {
        println!("{:>8.2} ms  {op}", t / runs as f64 * 1e3);
    }
    Ok(())
}

//! Choosing the engine and the detect mode from the command line and the environment.

use std::process::Command;

use facelive_testdata::{dev_dir, models_dir, ort_library};
use serde_json::Value;

fn facelive() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facelive"));
    c.env("FACELIVE_MODELS_DIR", models_dir())
        .env("ORT_DYLIB_PATH", ort_library())
        .env_remove("FACELIVE_CONFIG")
        .env_remove("FACELIVE_BACKEND");
    c
}

const IMAGES: [&str; 3] = [
    "live/nuaa_ClientRaw_0001_00_00_01_134.jpg",
    "spoof/nuaa_ImposterRaw_0001_00_00_01_111.jpg",
    "live/deepface_img11.jpg",
];

fn scores(args: &[&str]) -> Vec<f64> {
    let out = facelive()
        .args(args)
        .args(["check", "--json"])
        .args(IMAGES.iter().map(|f| dev_dir().join(f)))
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["live_score"].as_f64().unwrap()
        })
        .collect()
}

#[test]
fn onnx_runtime_gives_tract_scores_by_flag_and_by_environment() {
    let tract = scores(&[]);
    let by_flag = scores(&["--backend", "ort"]);
    let by_env = {
        let out = facelive()
            .env("FACELIVE_BACKEND", "ort")
            .args(["models", "list"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("engines: detector ort, judges tract"),
            "{text}"
        );
        scores(&["--backend", "ort", "--judge-backend", "ort"])
    };
    for (t, o) in tract.iter().zip(by_flag.iter().chain(&by_env)) {
        assert!((t - o).abs() < 1e-4, "tract {t} vs ort {o}");
    }
    assert_eq!(tract.len(), 3);
    assert_eq!(by_env.len(), 3);
}

#[test]
fn a_missing_onnx_runtime_library_is_a_clear_error() {
    let out = facelive()
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .args(["--backend", "ort", "check"])
        .arg(dev_dir().join(IMAGES[0]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("ONNX Runtime")
            && err.contains("ORT_DYLIB_PATH")
            && err.contains("--backend tract"),
        "{err}"
    );
}

/// The container's configuration (FACELIVE_BACKEND=ort, the library at a fixed path) with
/// the library gone: `serve` stops at start with the reason, before it listens, never at
/// the first request.
#[test]
fn serve_with_a_missing_onnx_runtime_library_stops_at_start() {
    let mut child = facelive()
        .env("FACELIVE_BACKEND", "ort")
        .env(
            "ORT_DYLIB_PATH",
            "/usr/lib/facelive/missing/libonnxruntime.so",
        )
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve kept running without its ONNX Runtime library");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("ONNX Runtime") && err.contains("--backend tract"),
        "{err}"
    );
    assert!(
        !err.contains("facelive serving"),
        "it started listening: {err}"
    );
}

#[test]
fn bench_reports_the_first_pass_and_the_steady_state_apart() {
    let out = facelive()
        .args([
            "--detect-mode",
            "two-pass",
            "bench",
            "--json",
            "--repeat",
            "2",
        ])
        .arg(dev_dir().join("manifest.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["pass"], "first_pass");
    assert_eq!(lines[1]["pass"], "steady_state");
    for l in &lines {
        assert_eq!(l["images"], 190);
        assert!(l["images_per_s"].as_f64().unwrap() > 0.0);
        assert!(l["p50_ms"].as_f64().unwrap() <= l["p95_ms"].as_f64().unwrap());
    }
}

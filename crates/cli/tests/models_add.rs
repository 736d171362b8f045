//! `facelive models add`: a customer's anti-spoof model, declared in a spec file, copied
//! into the models directory with its sha256, run once, then used with `--judges`.

use std::path::Path;
use std::process::Command;

use facelive_testdata::{dev_dir, models_dir};

const SPEC: &str = r#"
name = "customer_judge"
license = "the customer's"
[input]
layout = "NCHW"
colour = "RGB"
scale = 0.00392156862745098
mean = [0.0, 0.0, 0.0]
size = 128
[judge]
crop = { scale = 1.5, square = true, whole_pixels = true, outside = "reflect" }
resize = "area_lanczos"
output = { activation = "softmax", live_index = 0, classes = CLASSES }
"#;

fn facelive(models: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models)
        .args(args)
        .output()
        .unwrap()
}

/// The default pack's files, copied into `models`.
fn copy_pack(models: &Path) {
    for f in [
        "yunet_2023mar.onnx",
        "minifasnet_v2_80x80_s2.7.onnx",
        "minifasnet_v1se_80x80_s4.0.onnx",
        "mobilefacenet.onnx",
    ] {
        std::fs::copy(models_dir().join(f), models.join(f)).unwrap();
    }
}

/// An embedder spec (as one would write for OpenCV Zoo's SFace): MobileFaceNet's file
/// registered under another name, with its own input and thresholds.
const EMBEDDER_SPEC: &str = r#"
name = "customer_embedder"
family = "embedder"
role = "embedder"
license = "the customer's"
[input]
layout = "NCHW"
colour = "RGB"
scale = 0.00392156862745098
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
size = 112
[embedder]
template = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
output = "OUTPUT"
dims = 128
thresholds = { weak = 0.5, balanced = 0.6, strict = 0.7 }
"#;

/// An embedder declared in a spec is tried as the pack's embedder before it is registered
/// (a wrong output name is refused and leaves nothing), then `--embedder` runs it, with
/// its own match thresholds.
#[test]
fn an_embedder_declared_in_a_spec_is_registered_and_matches() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    copy_pack(&models);
    let onnx = models_dir().join("mobilefacenet.onnx");
    let add = |output: &str| {
        let spec = dir.path().join(format!("{output}.toml"));
        std::fs::write(&spec, EMBEDDER_SPEC.replace("OUTPUT", output)).unwrap();
        facelive(
            &models,
            &[
                "models",
                "add",
                onnx.to_str().unwrap(),
                "--spec",
                spec.to_str().unwrap(),
            ],
        )
    };
    let o = add("features");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not run as declared"));
    assert!(!models.join("local-models.toml").exists());
    let o = add("embedding");
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && said.contains("--embedder customer_embedder"),
        "{said}"
    );

    let images = facelive_testdata::verify_dir().join("images");
    let selfie = images.join("imironica__db_ClientRaw_0001_0001_00_00_01_152.jpg");
    let reference = images.join("imironica__db_ClientRaw_0001_0001_00_00_01_264.jpg");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            selfie.to_str().unwrap(),
            reference.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let o = facelive(&models, &args);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (shipped, custom) = (verify(&[]), verify(&["--embedder", "customer_embedder"]));
    assert_eq!(custom["match_threshold"].as_f64().unwrap() as f32, 0.6);
    assert_eq!(shipped["match_threshold"].as_f64().unwrap() as f32, 0.42);
    // The same network under another name: the same similarity.
    assert_eq!(custom["similarity"], shipped["similarity"]);
}

#[test]
fn a_model_declared_in_a_spec_is_registered_and_judges() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    copy_pack(&models);
    let onnx = models_dir().join("facenox_minifasnetv2se_128.onnx");
    let add = |classes: &str| {
        let spec = dir.path().join(format!("spec{classes}.toml"));
        std::fs::write(&spec, SPEC.replace("CLASSES", classes)).unwrap();
        facelive(
            &models,
            &[
                "models",
                "add",
                onnx.to_str().unwrap(),
                "--spec",
                spec.to_str().unwrap(),
            ],
        )
    };
    // Declared with 3 outputs, the model gives 2: refused, nothing left behind.
    let o = add("3");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not run as declared"));
    assert!(!models.join("customer_judge.onnx").exists());
    assert!(!models.join("local-models.toml").exists());

    let o = add("2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let local = std::fs::read_to_string(models.join("local-models.toml")).unwrap();
    assert!(local
        .contains("sha256 = \"af2381b88f38769222ed93379e12444e2a50814575de1c46170de570c55a42b6\""));
    let list = String::from_utf8_lossy(&facelive(&models, &["models", "list"]).stdout).to_string();
    assert!(list.contains("customer_judge"), "{list}");
    // A second add of the same name is refused.
    assert!(!add("2").status.success());
    // A name that is no file name (a NUL byte, a path) is refused; nothing is left behind.
    let registered = std::fs::read_to_string(models.join("local-models.toml")).unwrap();
    for bad in ["bad\\u0000name", "../escape", ".hidden", ""] {
        let spec = dir.path().join("bad.toml");
        let text = SPEC.replace("CLASSES", "2").replace("customer_judge", bad);
        std::fs::write(&spec, text).unwrap();
        let o = facelive(
            &models,
            &[
                "models",
                "add",
                onnx.to_str().unwrap(),
                "--spec",
                spec.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("model name"),
            "{bad}: {err}"
        );
        let now = std::fs::read_to_string(models.join("local-models.toml")).unwrap();
        assert_eq!(now, registered, "{bad}: local-models.toml changed");
    }
    let files = std::fs::read_dir(&models).unwrap().count();
    assert_eq!(
        files, 6,
        "four pack files, the added model, local-models.toml"
    );

    // The new pack judges: its pack name and its model's score in the verdict.
    let img = dev_dir().join("live/nuaa_ClientRaw_0001_00_00_01_134.jpg");
    let o = facelive(
        &models,
        &[
            "--judges",
            "customer_judge",
            "check",
            "--json",
            img.to_str().unwrap(),
        ],
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let per_model = &j["verdict"]["per_model"];
    assert_eq!(per_model[0]["model"], "customer_judge", "{j}");
    assert!(j["live_score"].as_f64().unwrap() > 0.9, "{j}");
    assert_eq!(
        j["verdict"]["model_pack"]["name"],
        "yunet_2023mar+customer_judge"
    );
    // And the default pack is unchanged without --judges.
    let o = facelive(&models, &["check", "--json", img.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["verdict"]["per_model"].as_array().unwrap().len(), 2);
}

//! `facelive check` end to end: the real binary, real images, real models.

use std::process::Command;

use facelive_testdata::{dev_dir, models_dir, reference_scores};
use serde_json::Value;

fn facelive() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facelive"));
    c.env("FACELIVE_MODELS_DIR", models_dir())
        .env_remove("FACELIVE_CONFIG");
    c
}

fn image(rel: &str) -> String {
    dev_dir().join(rel).display().to_string()
}

/// Runs `check --json` and returns the exit code and the parsed lines.
fn check_json(args: &[&str], files: &[&str]) -> (i32, Vec<Value>) {
    let out = facelive()
        .arg("check")
        .arg("--json")
        .args(args)
        .args(files.iter().map(|f| image(f)))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code().unwrap(), lines)
}

const LIVE: &str = "live/nuaa_ClientRaw_0001_00_00_01_134.jpg";
const SPOOF: &str = "spoof/nuaa_ImposterRaw_0001_00_00_01_111.jpg";

#[test]
fn json_lines_come_in_input_order_with_the_documented_fields() {
    let files = [
        LIVE,
        SPOOF,
        "edge/no_face_blank.png",
        "edge/truncated.jpg",
        "edge/two_faces.jpg",
    ];
    let (code, lines) = check_json(&[], &files);
    assert_eq!(code, 5, "an error among the images exits 5");
    assert_eq!(lines.len(), files.len());
    for (l, f) in lines.iter().zip(files) {
        assert_eq!(l["file"], image(f));
        for key in [
            "outcome",
            "live_score",
            "threshold",
            "face",
            "faces",
            "error",
        ] {
            assert!(l.get(key).is_some(), "{f}: no {key} in {l}");
        }
    }
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["live", "spoof", "retry", "error", "live"]);

    let live = &lines[0];
    assert!(live["live_score"].as_f64().unwrap() >= live["threshold"].as_f64().unwrap());
    assert_eq!(live["operating_point"], "balanced");
    assert_eq!(live["faces"], 1);
    let b = &live["face"]["box"];
    let r = reference_scores()
        .into_iter()
        .find(|r| r.file == LIVE)
        .unwrap();
    // In original pixels, where the reference found the face: two-pass detection (the
    // default) puts this 154-px face's edges within 6 px of the reference's (5 measured).
    for (k, want) in [("x", r.x), ("y", r.y), ("width", r.w), ("height", r.h)] {
        let got = b[k].as_f64().unwrap() as f32;
        assert!(
            (got - want.unwrap()).abs() < 6.0,
            "{k}: {got} vs reference {want:?}"
        );
    }
    assert!(live["error"].is_null());

    let no_face = &lines[2];
    assert_eq!(no_face["retry_reason"], "no_face");
    assert!(no_face["live_score"].is_null() && no_face["face"].is_null());
    assert_eq!(no_face["faces"], 0);

    let err = &lines[3];
    assert_eq!(err["error"]["code"], "corrupt_image");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("truncated"));
    assert!(err["live_score"].is_null());

    assert_eq!(lines[4]["faces"], 2);
    assert_eq!(
        lines[4]["verdict"]["other_faces"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn exit_status_says_live_spoof_or_cannot_judge() {
    assert_eq!(check_json(&[], &[LIVE]).0, 0);
    assert_eq!(check_json(&[], &[LIVE, SPOOF]).0, 3);
    assert_eq!(check_json(&[], &[SPOOF, "edge/tiny_face.jpg"]).0, 4);
}

#[test]
fn explicit_box_skips_detection_and_judges_that_region() {
    let r = reference_scores()
        .into_iter()
        .find(|r| r.file == LIVE)
        .unwrap();
    let [x, y, w, h] = r.bbox().unwrap();
    let arg = format!("{x},{y},{w},{h}");
    let (code, lines) = check_json(&["--box", &arg], &[LIVE]);
    assert_eq!(code, 0);
    let l = &lines[0];
    assert_eq!(l["face"]["box"]["x"].as_f64().unwrap() as f32, x);
    assert!(
        l["face"]["landmarks"].is_null(),
        "no landmarks for a given box"
    );
    let score = l["live_score"].as_f64().unwrap() as f32;
    assert!(
        (score - r.live_score.unwrap()).abs() <= 0.02,
        "{score} vs {:?}",
        r.live_score
    );
    // A box outside the image is refused, not judged.
    let (code, lines) = check_json(&["--box", "5000,5000,10,10"], &[LIVE]);
    assert_eq!(code, 5);
    assert_eq!(lines[0]["error"]["code"], "invalid_request");
}

#[test]
fn threshold_and_operating_point_change_the_decision() {
    let (_, strict) = check_json(&["--threshold", "0.999"], &[LIVE]);
    assert_eq!(strict[0]["outcome"], "spoof");
    assert_eq!(strict[0]["threshold"], 0.999);
    assert!(strict[0]["operating_point"].is_null());
    let (_, weak) = check_json(&["--operating-point", "weak"], &[LIVE]);
    assert_eq!(weak[0]["operating_point"], "weak");
}

#[test]
fn readable_summary_names_decision_score_box_quality_and_timings() {
    let out = facelive().arg("check").arg(image(LIVE)).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    // This webcam frame is judged, with a warning: the face fills a tenth of it.
    for part in [
        "LIVE score",
        "face ",
        "quality   warn face_share",
        "move closer",
        "timings",
        "detect",
    ] {
        assert!(s.contains(part), "{part:?} missing from:\n{s}");
    }
}

#[test]
fn missing_models_directory_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", dir.path())
        .args(["check", &image(LIVE)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("missing") && err.contains("models pull"),
        "{err}"
    );
}

#[test]
fn config_file_sets_models_dir_and_thresholds_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facelive.toml");
    std::fs::write(
        &cfg,
        format!(
            "models_dir = {:?}\n[thresholds]\nweak = 0.1\nbalanced = 0.2\nstrict = 0.999\n",
            models_dir().display().to_string()
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env_remove("FACELIVE_MODELS_DIR")
            .env("FACELIVE_CONFIG", &cfg)
            .args(["check", "--json"])
            .args(extra)
            .arg(image(LIVE))
            .output()
            .unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str::<Value>(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let strict = run(&["--operating-point", "strict"]);
    assert_eq!(strict["threshold"].as_f64().unwrap() as f32, 0.999);
    assert_eq!(strict["outcome"], "spoof");
    assert_eq!(run(&[])["threshold"].as_f64().unwrap() as f32, 0.2);
    // A flag beats the file: a wrong models folder on the command line is used, and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_CONFIG", &cfg)
        .args([
            "--models-dir",
            dir.path().to_str().unwrap(),
            "check",
            &image(LIVE),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// The config file is refused whole when a key is not a setting, a value has the wrong
/// type, or a section has an unknown key; the message names it.
#[test]
fn a_config_file_with_a_wrong_key_or_type_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facelive.toml");
    for (text, named) in [
        ("max_sides = 1024\n", "max_sides"),
        ("max_side = \"big\"\n", "max_side"),
        ("[quality]\nmin_face_sides = 10\n", "min_face_sides"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env("FACELIVE_CONFIG", &cfg)
            .env("FACELIVE_MODELS_DIR", models_dir())
            .args(["check", &image(LIVE)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(named), "{text}: {err}");
    }
}

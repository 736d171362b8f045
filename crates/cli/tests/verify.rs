//! `facelive verify SELFIE REFERENCE`, `eval --pairs` and `calibrate --pairs` on the verify
//! set (../shared/data/verify): each outcome's exit status and record, the pairs report's
//! columns and figures, and the match thresholds written where `verify` reads them.

use std::path::PathBuf;
use std::process::Command;

use facelive_testdata::{dev_dir, models_dir, verify_dir};

fn facelive(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .args(args)
        .output()
        .unwrap()
}

fn img(name: &str) -> String {
    verify_dir().join("images").join(name).display().to_string()
}

const SELFIE: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_152.jpg";
const SAME: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_264.jpg";
const PRINT: &str = "imironica__db_ImposterRaw_0001_0001_00_01_02_134.jpg";
const OTHER: &str = "ageitgey__examples_knn_examples_test_johnsnow_test1.jpg";

#[test]
fn each_outcome_has_its_exit_status_and_record() {
    let blank = dev_dir()
        .join("edge/no_face_blank.png")
        .display()
        .to_string();
    let text = std::env::temp_dir().join("facelive-verify-not-an-image.txt");
    std::fs::write(&text, "not an image").unwrap();
    for (selfie, reference, code, outcome) in [
        (img(SELFIE), img(SAME), 0, "verified"),
        (img(PRINT), img(SELFIE), 3, "attack"),
        (img(SELFIE), blank.clone(), 4, "retry"),
        (img(SELFIE), img(OTHER), 6, "not_same_person"),
        (img(SELFIE), text.display().to_string(), 5, "error"),
    ] {
        let o = facelive(&["verify", &selfie, &reference, "--json"]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["outcome"], outcome, "{v}");
        if outcome == "retry" {
            assert_eq!(
                (&v["retry_image"], &v["retry_reason"]),
                (
                    &serde_json::json!("reference"),
                    &serde_json::json!("no_face")
                )
            );
        }
        if outcome == "error" {
            assert_eq!(v["error"]["code"], "invalid_reference");
        }
    }
    let o = facelive(&["verify", &img(SELFIE), &img(SAME)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("VERIFIED (similarity 0.9"), "{text}");
}

/// The pairs report over the whole verify set: exactly the documented columns, no attack
/// pair verified, FNMR at most 1% with FMR at most 0.1% at the default threshold; and the
/// thresholds calibrate writes are the ones verify then applies.
#[test]
fn eval_and_calibrate_pairs_over_the_verify_set() {
    let out = tempfile::tempdir().unwrap();
    let pairs = verify_dir().join("pairs.csv");
    let o = facelive(&[
        "eval",
        "--pairs",
        pairs.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(out.path().join("pairs_scores.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "a",
            "b",
            "same_person",
            "kind",
            "status",
            "similarity",
            "match_threshold",
            "live_score",
            "verified"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 1492);
    let attacks_verified = rows
        .iter()
        .filter(|x| &x[3] == "attack" && &x[8] == "true")
        .count();
    assert_eq!(attacks_verified, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("pairs_report.json")).unwrap())
            .unwrap();
    let balanced = &report["at_operating_points"][1][1];
    assert!(
        balanced["fnmr"]["value"].as_f64().unwrap() <= 0.01,
        "{balanced}"
    );
    assert!(
        balanced["fmr"]["value"].as_f64().unwrap() <= 0.001,
        "{balanced}"
    );
    assert_eq!(report["attack_verified"]["count"], 0);
    for f in ["pairs_report.md", "pairs_det.svg", "pairs_det.png"] {
        assert!(out.path().join(f).is_file(), "{f}");
    }

    let toml: PathBuf = out.path().join("facelive.toml");
    let o = facelive(&[
        "calibrate",
        "--pairs",
        pairs.to_str().unwrap(),
        "--write",
        toml.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written: toml::Table = std::fs::read_to_string(&toml).unwrap().parse().unwrap();
    let balanced = written["match_thresholds"]["balanced"].as_float().unwrap();
    assert!((0.40..0.43).contains(&balanced), "{balanced}");
    let o = facelive(&[
        "--config",
        toml.to_str().unwrap(),
        "verify",
        &img(SELFIE),
        &img(SAME),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["match_threshold"].as_f64().unwrap() as f32,
        balanced as f32
    );
}

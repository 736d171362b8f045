//! `facelive eval` on the dev set and on a live/ spoof/<species>/ folder.

use std::process::Command;

use facelive_testdata::{dev_dir, models_dir};
use serde_json::Value;

fn eval(source: &std::path::Path, out: &std::path::Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .arg("eval")
        .arg(source)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn eval_reports_iso_rates_for_the_dev_manifest() {
    let out = tempfile::tempdir().unwrap();
    let md = eval(&dev_dir().join("manifest.csv"), out.path());
    for part in [
        "BPCER",
        "APCER print",
        "APCER replay",
        "BPCER@APCER",
        "EER",
        "failures to acquire",
    ] {
        assert!(md.contains(part), "{part} missing:\n{md}");
    }
    assert_eq!(
        md,
        std::fs::read_to_string(out.path().join("report.md")).unwrap()
    );
    let j: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let balanced = j["operating_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "balanced")
        .unwrap();
    let r = &balanced["rates"];
    // 73 print attacks, 16 replays and 101 bona fide images, all accounted for.
    assert_eq!(r["apcer_by_species"]["print"]["total"], 73);
    assert_eq!(r["apcer_by_species"]["replay"]["total"], 16);
    assert_eq!(r["bpcer"]["total"], 101);
    // At the balanced point print attacks are all rejected on the dev set.
    assert!(r["apcer_by_species"]["print"]["value"].as_f64().unwrap() <= 0.05);
    let worst = r["apcer_worst"]["value"].as_f64().unwrap();
    let bpcer = r["bpcer"]["value"].as_f64().unwrap();
    assert!((r["acer"].as_f64().unwrap() - (worst + bpcer) / 2.0).abs() < 1e-12);
    // The one bona fide image without a detectable face is a failure to acquire.
    assert_eq!(j["failures_to_acquire"]["bona_fide"]["no_face"]["count"], 1);
    let scores = std::fs::read_to_string(out.path().join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 1 + 190);
}

#[test]
fn eval_reads_species_from_spoof_subfolders() {
    let set = tempfile::tempdir().unwrap();
    let dev = dev_dir();
    for (dir, file) in [
        ("live", "live/nuaa_ClientRaw_0001_00_00_01_134.jpg"),
        ("live", "live/silentface_image_T1.jpg"),
        (
            "spoof/print",
            "spoof/nuaa_ImposterRaw_0001_00_00_01_111.jpg",
        ),
        ("spoof/screen", "spoof/silentface_image_F2.jpg"),
    ] {
        std::fs::create_dir_all(set.path().join(dir)).unwrap();
        let name = file.rsplit('/').next().unwrap();
        std::fs::copy(dev.join(file), set.path().join(dir).join(name)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let md = eval(set.path(), out.path());
    assert!(
        md.contains("APCER print") && md.contains("APCER screen"),
        "{md}"
    );
    assert!(md.contains("2 bona fide, 2 attacks"), "{md}");
}

#[test]
fn eval_scores_another_systems_results_in_the_same_terms() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env("FACELIVE_MODELS_DIR", models_dir())
        .arg("eval")
        .arg(dev_dir().join("manifest.csv"))
        .arg("--scores")
        .arg(dev_dir().join("reference_scores.csv"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let j: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let at = j["operating_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "0.5")
        .unwrap();
    // What refpeer.py prints for the same set at 0.5: APCER 0.022 pooled, BPCER 0.158.
    assert_eq!(at["rates"]["apcer_pooled"]["count"], 2);
    assert_eq!(at["rates"]["bpcer"]["count"], 16);
    assert_eq!(j["failures_to_acquire"]["bona_fide"]["no_face"]["count"], 1);
}

//! `facelive adapt` on the domain set, end to end: the pack it writes, what the pack
//! reproduces, the refusals (too small a set, labels that carry no signal), determinism,
//! and `eval --by`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use facelive_testdata::server::{free_port, get, wait_ready, Killed};
use facelive_testdata::{dev_dir, domain_dir, models_dir};
use serde_json::Value;

fn facelive() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facelive"));
    c.env("FACELIVE_MODELS_DIR", models_dir())
        .env_remove("FACELIVE_PACK")
        .env_remove("FACELIVE_CONFIG")
        // `domain_copy` links the domain set's folders beside an edited manifest: links
        // out of the manifest's folder, which adapt refuses unless told.
        .env("FACELIVE_ALLOW_OUTSIDE_SET", "true");
    c
}

fn adapt(set: &Path, out: &Path, extra: &[&str]) -> Output {
    facelive()
        .arg("adapt")
        .arg(set)
        .args(["--group-by", "source_repo", "--seed", "7", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout {}\nstderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// One adapted pack of the domain set for the whole binary (the models run once), written
/// with `--force` whatever the evidence says, so the tests of the pack itself do not hang on
/// how this set's figures fall (`adapt_writes_a_pack_with_its_evidence` checks the gate).
fn adapted() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        ok(&adapt(
            &domain_dir().join("manifest.csv"),
            dir.path(),
            &["--force"],
        ));
        dir
    })
    .path()
}

fn pack_toml(dir: &Path) -> toml::Table {
    std::fs::read_to_string(dir.join("pack.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

/// A copy of the domain set's manifest beside links to its images, changed by `edit`,
/// with the first run's feature cache (the same images: no model runs again).
fn domain_copy(edit: impl FnOnce(&mut Vec<csv::StringRecord>)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for sub in ["live", "spoof"] {
        std::os::unix::fs::symlink(domain_dir().join(sub), tmp.path().join(sub)).unwrap();
    }
    let mut r = csv::Reader::from_path(domain_dir().join("manifest.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let mut rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    edit(&mut rows);
    let set = tmp.path().join("manifest.csv");
    let mut w = csv::Writer::from_path(&set).unwrap();
    w.write_record(&headers).unwrap();
    for row in &rows {
        w.write_record(row).unwrap();
    }
    w.flush().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(adapted().join("features.json"), out.join("features.json")).unwrap();
    (tmp, out)
}

#[test]
fn adapt_writes_a_pack_with_its_evidence() {
    let dir = adapted();
    let pack = pack_toml(dir);
    assert_eq!(pack["training"]["images"].as_integer(), Some(400));
    assert_eq!(pack["training"]["groups"].as_integer(), Some(5));
    let cv = &pack["cv"];
    let (base, adapted) = (
        cv["base_acer"].as_float().unwrap(),
        cv["adapted_acer"].as_float().unwrap(),
    );
    // `--force` marks the pack exactly when it did not win out of fold.
    let p = cv["mcnemar_p"].as_float().unwrap();
    assert_eq!(
        pack["pack"]["forced"].as_bool(),
        Some(!(adapted < base && p < 0.05)),
        "{adapted} vs {base}, p {p}"
    );
    let names: Vec<&str> = pack["backbone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["yunet_2023mar", "minifasnet_v2", "minifasnet_v1se"]);
    assert_eq!(pack["head"]["weights"].as_array().unwrap().len(), 256);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for part in [
        "| base, calibrated | balanced |",
        "| adapted, calibrated | balanced |",
        "| base, shipped thresholds | balanced | 0.50 |",
        "not judged by either pack",
        "lestari15/CNN-face-detection",
        "Folds: 1 = ",
    ] {
        assert!(report.contains(part), "report.md lacks {part:?}:\n{report}");
    }
    for f in [
        "cv/adapted/report.md",
        "cv/adapted/det.svg",
        "cv/adapted/det.png",
        "cv/base/histogram.svg",
        "cv/adapted/scores.csv",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // The DET picture overlays the base pack's curve on the adapted one's.
    let det = std::fs::read_to_string(dir.join("cv/adapted/det.svg")).unwrap();
    assert!(det.contains("base pack, pooled") && det.contains("adapted (out of fold), pooled"));
}

#[test]
fn the_same_seed_gives_the_same_pack() {
    let (_tmp, out) = domain_copy(|_| {});
    let set = out.parent().unwrap().join("manifest.csv");
    ok(&adapt(&set, &out, &["--force"]));
    let (a, b) = (pack_toml(adapted()), pack_toml(&out));
    assert_eq!(
        a["head"], b["head"],
        "head weights differ between two runs of one seed"
    );
    assert_eq!(a["thresholds"], b["thresholds"]);
    assert_eq!(a["pack"]["version"], b["pack"]["version"]);
}

#[test]
fn a_group_is_never_on_both_sides_of_a_split() {
    // The report lists each fold's groups: five groups, five folds, each group once.
    let report = std::fs::read_to_string(adapted().join("report.md")).unwrap();
    let folds = report.lines().find(|l| l.starts_with("Folds: ")).unwrap();
    let groups: Vec<&str> = folds
        .trim_start_matches("Folds: ")
        .trim_end_matches('.')
        .split("; ")
        .collect();
    assert_eq!(groups.len(), 5, "{folds}");
    let mut all: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.split_once(" = ").unwrap().1.split(" + "))
        .collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "a group in two folds: {folds}");
    assert_eq!(n, 5);
}

#[test]
fn shuffled_labels_write_no_pack() {
    // Labels dealt at random within the set: the features cannot predict them.
    let (_tmp, out) = domain_copy(|rows| {
        let labels: Vec<String> = rows.iter().map(|r| r[1].to_string()).collect();
        let n = labels.len();
        for (i, row) in rows.iter_mut().enumerate() {
            let mut fields: Vec<String> = row.iter().map(str::to_string).collect();
            // A fixed permutation (i * 7 + 3 mod 400, 7 coprime to 400).
            fields[1] = labels[(i * 7 + 3) % n].clone();
            fields[2] = if fields[1] == "live" {
                "none".into()
            } else {
                "replay".into()
            };
            *row = csv::StringRecord::from(fields);
        }
    });
    let set = out.parent().unwrap().join("manifest.csv");
    let o = adapt(&set, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("not written") && err.contains("not shown to be better"),
        "{err}"
    );
    assert!(!out.join("pack.toml").exists());
    assert!(
        out.join("report.md").is_file(),
        "the evidence is written all the same"
    );
}

#[test]
fn the_pack_is_written_when_the_gain_holds_out_of_fold() {
    // Grouped by image, near-duplicate frames of one video fall on both sides of a split,
    // and the head learns them: a large out-of-fold gain, beyond chance, so the gate opens
    // (and the report shows how much a wrong grouping flatters). Source by source above it
    // is the honest figure.
    let (_tmp, out) = domain_copy(|_| {});
    let set = out.parent().unwrap().join("manifest.csv");
    let o = facelive()
        .arg("adapt")
        .arg(&set)
        .args(["--group-by", "file", "--seed", "7", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = ok(&o);
    assert!(stdout.contains("the adapted pack is better"), "{stdout}");
    let pack = pack_toml(&out);
    assert_eq!(pack["pack"]["forced"].as_bool(), Some(false));
    assert!(pack["cv"]["mcnemar_p"].as_float().unwrap() < 0.05);
    assert!(stdout.contains("Folds: 1 = 80 groups"), "{stdout}");
}

#[test]
fn too_small_a_set_is_refused_before_any_training() {
    let (_tmp, out) = domain_copy(|rows| rows.truncate(50));
    let set = out.parent().unwrap().join("manifest.csv");
    std::fs::remove_file(out.join("features.json")).unwrap();
    let o = adapt(&set, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("too few"), "{err}");
    assert!(
        !out.join("features.json").exists(),
        "the models ran on a set too small"
    );
}

#[test]
fn the_written_pack_reproduces_its_training_scores() {
    let dir = adapted();
    let out = tempfile::tempdir().unwrap();
    ok(facelive()
        .arg("--pack")
        .arg(dir)
        .arg("eval")
        .arg(domain_dir().join("manifest.csv"))
        .arg("--out")
        .arg(out.path())
        .output()
        .as_ref()
        .unwrap());
    let read = |p: &Path| -> std::collections::HashMap<String, f32> {
        csv::Reader::from_path(p)
            .unwrap()
            .deserialize::<std::collections::HashMap<String, String>>()
            .map(|r| r.unwrap())
            .filter(|r| !r["live_score"].is_empty())
            .map(|r| (r["file"].clone(), r["live_score"].parse().unwrap()))
            .collect()
    };
    let (trained, again) = (
        read(&dir.join("training_scores.csv")),
        read(&out.path().join("scores.csv")),
    );
    assert!(trained.len() > 250, "{} training scores", trained.len());
    assert_eq!(trained.len(), again.len());
    for (file, s) in &trained {
        let d = (s - again[file]).abs();
        assert!(d <= 1e-5, "{file}: trained {s}, reloaded {}", again[file]);
    }
}

#[test]
fn every_verdict_of_the_pack_names_it_and_uses_its_thresholds() {
    let dir = adapted();
    let pack = pack_toml(dir);
    let o = facelive()
        .arg("--pack")
        .arg(dir)
        .args(["check", "--json"])
        .arg(domain_dir().join("live/aksultan__dataset_real_0.png"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let named = &v["verdict"]["model_pack"];
    assert_eq!(named["name"], pack["pack"]["name"].as_str().unwrap(), "{v}");
    assert_eq!(named["version"], pack["pack"]["version"].as_str().unwrap());
    let balanced = pack["thresholds"]["balanced"].as_float().unwrap();
    assert!(
        (v["threshold"].as_f64().unwrap() - balanced).abs() < 1e-6,
        "{v}"
    );
}

#[test]
fn models_verify_checks_the_pack_and_refuses_an_edited_head() {
    let dir = adapted();
    let out = ok(&facelive()
        .arg("--pack")
        .arg(dir)
        .args(["models", "verify"])
        .output()
        .unwrap());
    assert!(out.contains("256 head inputs, fits its judges"), "{out}");
    let edited = tempfile::tempdir().unwrap();
    let mut pack = pack_toml(dir);
    let bias = pack["head"]["bias"].as_float().unwrap();
    pack["head"].as_table_mut().unwrap()["bias"] = toml::Value::Float(bias + 1.0);
    std::fs::write(
        edited.path().join("pack.toml"),
        toml::to_string(&pack).unwrap(),
    )
    .unwrap();
    let o = facelive()
        .arg("--pack")
        .arg(edited.path())
        .args(["models", "verify"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(err.contains("edited after training"), "{err}");
}

#[test]
fn eval_by_breaks_rates_down_per_column_value() {
    let out = tempfile::tempdir().unwrap();
    let md = ok(&facelive()
        .arg("eval")
        .arg(dev_dir().join("manifest.csv"))
        .args(["--by", "capture,source_repo", "--out"])
        .arg(out.path())
        .output()
        .unwrap());
    let rows = facelive_testdata::manifest();
    let j: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let by = j["by"].as_array().unwrap();
    for capture in ["face_crop", "full_frame"] {
        let r = by
            .iter()
            .find(|r| r["column"] == "capture" && r["value"] == capture)
            .unwrap();
        let live = rows
            .iter()
            .filter(|x| x.capture == capture && x.label == "live")
            .count();
        assert_eq!(
            r["bpcer"]["total"].as_u64().unwrap() as usize,
            live,
            "{capture}"
        );
        assert!(md.contains(&format!("| capture | {capture}")), "{md}");
    }
    let repos = by.iter().filter(|r| r["column"] == "source_repo").count();
    assert!(repos >= 5, "{repos} source_repo rows");
    // A group with few images is flagged.
    assert!(by.iter().any(|r| r["small"] == true));
    assert!(md.contains(" † |"), "{md}");
}

#[test]
fn the_server_runs_the_pack_named_in_its_config_file_and_says_so() {
    let dir = adapted();
    let pack = pack_toml(dir);
    let cfg = tempfile::tempdir().unwrap();
    let file = cfg.path().join("facelive.toml");
    std::fs::write(&file, format!("pack = {:?}\n", dir.display().to_string())).unwrap();
    let port = free_port();
    let _server = Killed(
        facelive()
            .env("FACELIVE_CONFIG", &file)
            .args([
                "serve",
                "--no-auth",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base);
    let info: Value = serde_json::from_str(&get(&format!("{base}/info")).unwrap()).unwrap();
    assert_eq!(
        info["model_pack"]["name"],
        pack["pack"]["name"].as_str().unwrap()
    );
    assert_eq!(
        info["model_pack"]["version"],
        pack["pack"]["version"].as_str().unwrap()
    );
    let balanced = pack["thresholds"]["balanced"].as_float().unwrap();
    assert!(
        (info["thresholds"]["balanced"].as_f64().unwrap() - balanced).abs() < 1e-6,
        "{info}"
    );
}

/// The ACER in `report.md`'s fine-tuning table for the row named `name`.
#[cfg(feature = "fine-tune")]
fn fine_tune_acer(report: &str, name: &str) -> f64 {
    let prefix = format!("| {name} | ");
    let section = report
        .split("## Fine-tuning")
        .nth(1)
        .expect("a fine-tuning section");
    let line = section
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains("% |"))
        .unwrap_or_else(|| panic!("no {name:?} row:\n{report}"));
    line[prefix.len()..]
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[cfg(feature = "fine-tune")]
fn fine_tuning_is_measured_against_the_head_on_the_same_folds() {
    // Grouped by image (leaky, as above), fine-tuning has something to learn: it must beat
    // the base pack out of fold, or the training does not work. What it writes is still
    // the head's pack, on the shipped backbones.
    let (_tmp, out) = domain_copy(|_| {});
    let set = out.parent().unwrap().join("manifest.csv");
    let o = facelive()
        .arg("adapt")
        .arg(&set)
        .args([
            "--group-by",
            "file",
            "--seed",
            "7",
            "--fine-tune",
            "--views",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = ok(&o);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("## Fine-tuning the judges' last block"),
        "{stdout}"
    );
    assert!(report.contains("trained on 2 views"), "{report}");
    let base = fine_tune_acer(&report, "base, calibrated");
    let tuned = fine_tune_acer(&report, "fine-tuned judges");
    assert!(
        tuned < base - 10.0,
        "fine-tuned {tuned}% against base {base}%"
    );
    assert!(report.contains("(one-sided exact McNemar p = "), "{report}");
    let pack = pack_toml(&out);
    let shas: Vec<&str> = pack["backbone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["sha256"].as_str().unwrap())
        .collect();
    let m = facelive_models::Manifest::builtin();
    let shipped: Vec<&str> = m
        .liveness_models()
        .iter()
        .map(|s| s.sha256.as_str())
        .collect();
    assert_eq!(shas, shipped);
}

#[test]
#[cfg(feature = "fine-tune")]
fn fine_tuning_settings_without_fine_tune_are_refused() {
    let o = facelive()
        .args([
            "adapt",
            "set.csv",
            "--group-by",
            "g",
            "--out",
            "o",
            "--views",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--fine-tune"), "{err}");
}

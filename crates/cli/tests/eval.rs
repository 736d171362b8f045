//! `facelive eval` on the dev set and on a live/ spoof/<species>/ folder.

use std::process::Command;

use facelive_testdata::{dev_dir, models_dir};
use serde_json::Value;

/// Runs the command, requires success and returns its standard output.
fn succeed(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Runs `facelive eval SOURCE --out OUT EXTRA...` and returns its Markdown report.
fn eval(source: &std::path::Path, out: &std::path::Path, extra: &[&std::ffi::OsStr]) -> String {
    String::from_utf8(succeed(
        Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env("FACELIVE_MODELS_DIR", models_dir())
            .arg("eval")
            .arg(source)
            .arg("--out")
            .arg(out)
            .args(extra),
    ))
    .unwrap()
}

/// The rates at one named operating point of a report.json, and the whole report.
fn point(out: &std::path::Path, name: &str) -> (Value, Value) {
    let j: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let p = j["operating_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no point {name}"))["rates"]
        .clone();
    (p, j)
}

#[test]
fn eval_reports_iso_rates_for_the_dev_manifest() {
    let out = tempfile::tempdir().unwrap();
    let compare = std::ffi::OsString::from(format!(
        "reference={}",
        dev_dir().join("reference_scores.csv").display()
    ));
    let md = eval(
        &dev_dir().join("manifest.csv"),
        out.path(),
        &["--compare".as_ref(), &compare],
    );
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
    let (r, j) = point(out.path(), "balanced");
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
    // The DET curve runs from accepting everything to rejecting everything.
    let det: Vec<Vec<f64>> = std::fs::read_to_string(out.path().join("det.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    // Columns: threshold, APCER worst species, APCER pooled, BPCER.
    let (first, last) = (&det[0], &det[det.len() - 1]);
    assert_eq!((first[1], last[1]), (1.0, 0.0), "APCER from 1 to 0");
    // Pooled: attacks not acquired are never accepted, even at threshold 0.
    assert!(
        first[2] > 0.9 && last[2] == 0.0,
        "pooled APCER from ~1 to 0"
    );
    assert!(first[3] < 0.02 && last[3] == 1.0, "BPCER from ~0 to 1");
    assert!(
        det.windows(2)
            .all(|w| w[1][1] <= w[0][1] && w[1][2] <= w[0][2] && w[1][3] >= w[0][3]),
        "monotone"
    );
    assert!(
        det.iter().all(|p| p[2] <= p[1]),
        "pooled never above the worst species"
    );
    pictures_show_the_curves(out.path(), det.len());

    // scores.csv is in the --scores format: read back, it gives the same report.
    let again = tempfile::tempdir().unwrap();
    eval(
        &dev_dir().join("manifest.csv"),
        again.path(),
        &[
            "--scores".as_ref(),
            out.path().join("scores.csv").as_os_str(),
        ],
    );
    let (_, k) = point(again.path(), "balanced");
    for part in [
        "operating_points",
        "bpcer_at_apcer",
        "eer",
        "failures_to_acquire",
    ] {
        assert_eq!(j[part], k[part], "{part} differs when read back");
    }
}

/// width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The DET picture draws this system's curve (every det.csv point), the compared
/// reference's, and the three operating points; the histogram has both labels and every
/// species; each PNG is the SVG at twice its size.
fn pictures_show_the_curves(out: &std::path::Path, det_points: usize) {
    let det = std::fs::read_to_string(out.join("det.svg")).unwrap();
    let curves: Vec<&str> = det
        .split("<polyline points=\"")
        .skip(1)
        .map(|p| p.split('"').next().unwrap())
        .collect();
    assert_eq!(
        curves.len(),
        4,
        "facelive and reference, worst species and pooled"
    );
    assert_eq!(curves[0].split(' ').count(), det_points);
    assert_eq!(curves[1].split(' ').count(), det_points);
    for name in ["facelive", "reference"] {
        for kind in ["worst species", "pooled"] {
            assert!(
                det.contains(&format!(">{name}, {kind}</text>")),
                "{name}, {kind}"
            );
        }
    }
    let t = facelive_pipeline::Thresholds::default();
    for point in [
        format!("weak {:.2}", t.weak),
        format!("balanced {:.2}", t.balanced),
        format!("strict {:.2}", t.strict),
    ] {
        assert!(det.contains(&point), "{point} not marked");
    }
    let hist = std::fs::read_to_string(out.join("histogram.svg")).unwrap();
    for part in [
        ">bona fide</text>",
        ">attack: print</text>",
        ">attack: replay</text>",
        "100 bona fide, 87 attacks scored; 3 not acquired",
    ] {
        assert!(hist.contains(part), "{part} missing");
    }
    for name in ["det", "histogram"] {
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg"))).unwrap();
        let w: u32 = svg
            .split("width=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let h: u32 = svg
            .split("height=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let png = std::fs::read(out.join(format!("{name}.png"))).unwrap();
        assert_eq!(png_size(&png), (2 * w, 2 * h), "{name}.png");
    }
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
    let md = eval(set.path(), out.path(), &[]);
    assert!(
        md.contains("APCER print") && md.contains("APCER screen"),
        "{md}"
    );
    assert!(md.contains("2 bona fide, 2 attacks"), "{md}");
}

#[test]
fn eval_scores_another_systems_results_in_the_same_terms() {
    let out = tempfile::tempdir().unwrap();
    let scores = dev_dir().join("reference_scores.csv");
    eval(
        &dev_dir().join("manifest.csv"),
        out.path(),
        &[
            "--scores".as_ref(),
            scores.as_os_str(),
            "--name".as_ref(),
            "reference".as_ref(),
        ],
    );
    let det = std::fs::read_to_string(out.path().join("det.svg")).unwrap();
    assert!(
        det.contains(">DET: reference on ") && det.contains(">reference, pooled</text>"),
        "the pictures carry --name"
    );
    let (at, j) = point(out.path(), "0.5");
    // What refpeer.py prints for the same set at 0.5: APCER 0.022 pooled, BPCER 0.158.
    assert_eq!(at["apcer_pooled"]["count"], 2);
    assert_eq!(at["bpcer"]["count"], 16);
    assert_eq!(j["failures_to_acquire"]["bona_fide"]["no_face"]["count"], 1);
}

#[test]
fn calibrate_reproduces_the_shipped_thresholds_and_writes_them_where_check_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facelive.toml");
    std::fs::write(
        &cfg,
        format!(
            "# deployment settings\nmodels_dir = {:?}\n\n[thresholds]\nweak = 0.1\nbalanced = 0.2\nstrict = 0.3\n\n[serve]\nqueue = 5\n",
            models_dir().display().to_string()
        ),
    )
    .unwrap();
    succeed(
        Command::new(env!("CARGO_BIN_EXE_facelive"))
            .env_remove("FACELIVE_MODELS_DIR")
            .arg("--config")
            .arg(&cfg)
            .arg("calibrate")
            .arg(dev_dir().join("manifest.csv")),
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let t = &doc["thresholds"];
    // The defaults shipped in facelive-pipeline (docs/THRESHOLDS.md).
    let d = facelive_pipeline::Thresholds::default();
    assert_eq!(t["weak"].as_float().unwrap() as f32, d.weak);
    assert_eq!(t["balanced"].as_float().unwrap() as f32, d.balanced);
    assert_eq!(t["strict"].as_float().unwrap() as f32, d.strict);
    // The rest of the file is kept, comment included.
    assert!(
        text.contains("# deployment settings") && doc["serve"]["queue"].as_integer() == Some(5),
        "{text}"
    );
    // check reads them.
    let o = Command::new(env!("CARGO_BIN_EXE_facelive"))
        .env_remove("FACELIVE_MODELS_DIR")
        .arg("--config")
        .arg(&cfg)
        .args(["check", "--json", "--operating-point", "strict"])
        .arg(dev_dir().join("live/nuaa_ClientRaw_0001_00_00_01_134.jpg"))
        .output()
        .unwrap();
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["threshold"].as_f64().unwrap() as f32, d.strict);
}

/// A real set's shape: 14 attack species, 5 of them a single image. The report keeps the
/// pooled APCER beside the per-species figures, flags the small species and leaves them out
/// of the worst-species figures (so one unlucky image no longer makes the worst-species
/// APCER 100% at every threshold), states its definitions, and its pictures name every
/// species.
#[test]
fn small_species_are_flagged_and_left_out_of_the_worst_species_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = String::from("file,label,attack_type\n");
    let mut scores = String::from("file,label,attack_type,status,live_score\n");
    let mut add = |file: String, label: &str, species: &str, score: f32| {
        manifest.push_str(&format!("{file},{label},{species}\n"));
        scores.push_str(&format!("{file},{label},{species},ok,{score}\n"));
    };
    // Deterministic scores: bona fide high, attacks low, with some overlap.
    for i in 0..60 {
        add(
            format!("live/{i}.jpg"),
            "live",
            "-",
            0.35 + 0.6 * ((i * 37) % 60) as f32 / 60.0,
        );
    }
    for s in 0..9 {
        for i in 0..12 {
            let score = 0.02 + 0.5 * ((i * 7 + s * 3) % 12) as f32 / 12.0;
            add(
                format!("spoof/big{s}_{i}.jpg"),
                "spoof",
                &format!("species_{s:02}"),
                score,
            );
        }
    }
    // Five species of one image each, all scoring high: each alone is 100% APCER.
    for s in 0..5 {
        add(
            format!("spoof/one{s}.jpg"),
            "spoof",
            &format!("single_{s}"),
            0.97,
        );
    }
    std::fs::write(dir.path().join("manifest.csv"), &manifest).unwrap();
    std::fs::write(dir.path().join("scores.csv"), &scores).unwrap();
    let out = dir.path().join("report");
    let md = eval(
        &dir.path().join("manifest.csv"),
        &out,
        &[
            "--scores".as_ref(),
            dir.path().join("scores.csv").as_os_str(),
        ],
    );
    assert!(md.contains("Definitions (ISO/IEC 30107-3)"), "{md}");
    assert!(md.contains("APCER (pooled)"));
    for s in 0..5 {
        assert!(
            md.contains(&format!("APCER single_{s} †")),
            "single_{s} not flagged"
        );
        assert!(
            md.contains(&format!("single_{s} (1)")),
            "single_{s} not named as left out"
        );
    }
    assert!(
        md.contains("APCER species_00 |") || md.contains("APCER species_00 "),
        "{md}"
    );
    assert!(!md.contains("APCER species_00 †"));

    let (r, j) = point(&out, "balanced");
    assert_eq!(r["apcer_pooled"]["total"], 9 * 12 + 5);
    let worst = r["apcer_worst"]["value"].as_f64().unwrap();
    assert!(
        worst < 1.0,
        "the worst species is a real one, not a single image: {worst}"
    );
    assert_eq!(j["small_species"].as_object().unwrap().len(), 5);
    let eer = j["eer"]["value"].as_f64().unwrap();
    assert!(eer < 0.5, "EER over the counted species: {eer}");
    // Without the minimum (every species counts), the singles dominate: the old report.
    let all = dir.path().join("all");
    eval(
        &dir.path().join("manifest.csv"),
        &all,
        &[
            "--scores".as_ref(),
            dir.path().join("scores.csv").as_os_str(),
            "--min-species-count".as_ref(),
            "1".as_ref(),
        ],
    );
    let (r1, j1) = point(&all, "balanced");
    assert_eq!(r1["apcer_worst"]["value"], 1.0);
    assert!(j1["eer"]["value"].as_f64().unwrap() > eer);

    // The DET curve is not flat; the histogram's legend names every species, the small ones
    // grouped and named, on as many rows as it takes.
    let det: Vec<Vec<f64>> = std::fs::read_to_string(out.join("det.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let worst_values: std::collections::BTreeSet<u64> =
        det.iter().map(|p| (p[1] * 1e6) as u64).collect();
    assert!(
        worst_values.len() > 5,
        "worst-species DET has {} levels",
        worst_values.len()
    );
    let hist = std::fs::read_to_string(out.join("histogram.svg")).unwrap();
    for s in 0..9 {
        assert!(
            hist.contains(&format!(">attack: species_{s:02}</text>")),
            "species_{s:02}"
        );
    }
    assert!(
        hist.contains("5 small species: single_0 (1), single_1 (1)"),
        "{hist}"
    );
    // Every legend entry lies above the plot area and inside the picture.
    let top: f64 = hist
        .split("<rect x=\"78\" y=\"")
        .last()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        top > 78.0,
        "the plot moved down for a second legend row: {top}"
    );
    if let Ok(dest) = std::env::var("FACELIVE_DOCS_PICTURES") {
        for f in ["histogram.png", "det.png"] {
            std::fs::copy(
                out.join(f),
                std::path::Path::new(&dest).join(format!("small-species-{f}")),
            )
            .unwrap();
        }
    }
}

//! A judge declared only in data: the facenox 128 model, described by its manifest entry
//! (RGB, /255, a square crop 1.5x the box mirrored at the image edges, area or Lanczos
//! resize, softmax index 0) and run by the same code as the MiniFASNet pair, reproduces the
//! scores its authors' recipe gives (`../shared/data/dev/judges/facenox_scores.csv`, made
//! with onnxruntime and OpenCV) given the same boxes.
//!
//! Issue 13 asks for 95% of the 189 within 0.02. facelive decodes JPEG with libjpeg-turbo,
//! OpenCV's decoder, to the same pixels (checked on every dev JPEG against OpenCV 5.0), and
//! crops and resizes (area, Lanczos) as OpenCV does to the bit: 181 are within 0.02, the
//! count the recipe re-run in Python with OpenCV 5.0 gives (the file was made with another
//! OpenCV build; this model moves by up to 0.32 on a level or two of pixel difference).
//! Every PNG is within 0.02.

use facelive_models::Manifest;
use facelive_pipeline::face::BBox;
use facelive_pipeline::quality::Policy;
use facelive_pipeline::{CheckOptions, DecisionRule, Pipeline, PipelineConfig};
use facelive_testdata::{dev_dir, models_dir, read};

fn facenox_pack() -> Manifest {
    let text = include_str!("../../models/manifest.toml").replace(
        r#"judges = ["minifasnet_v2", "minifasnet_v1se"]"#,
        r#"judges = ["facenox_minifasnetv2se_128"]"#,
    );
    Manifest::parse(&text).expect("the facenox pack parses")
}

#[test]
fn facenox_declared_in_data_reproduces_its_reference_scores() {
    let mut cfg = PipelineConfig::new(models_dir());
    // The recipe crops from the full-size photo.
    cfg.ingest.max_side = 8192;
    // Score every given box: no quality check may stop the judge.
    let q = &mut cfg.quality;
    for p in [
        &mut q.image_size,
        &mut q.face_size,
        &mut q.face_padding,
        &mut q.eye_distance,
        &mut q.face_share,
        &mut q.pose,
        &mut q.brightness,
        &mut q.exposure,
        &mut q.sharpness,
        &mut q.face_count,
    ] {
        *p = Policy::Off;
    }
    let p = Pipeline::load(cfg, &facenox_pack(), facelive_backends::default_backend()).unwrap();
    let mut rdr = csv::Reader::from_path(dev_dir().join("judges/facenox_scores.csv")).unwrap();
    let (mut close, mut total, mut worst) = (0, 0, (0.0f32, String::new()));
    let mut same_pixels_off: Vec<String> = Vec::new();
    for row in rdr.records() {
        let r = row.unwrap();
        let f = |i: usize| r[i].parse::<f32>().unwrap();
        let want = f(6);
        let opts = CheckOptions {
            rule: DecisionRule::Threshold(0.0),
            face_box: Some(BBox {
                x: f(2),
                y: f(3),
                width: f(4),
                height: f(5),
            }),
            ..Default::default()
        };
        let v = p.check(&read(&r[0]), &opts).unwrap();
        let got = v
            .live_score
            .unwrap_or_else(|| panic!("{} not judged", &r[0]));
        let d = (got - want).abs();
        total += 1;
        if d <= 0.02 {
            close += 1;
        } else if !r[0].ends_with(".jpg") {
            same_pixels_off.push(format!("{} ({d:.3})", &r[0]));
        }
        if d > worst.0 {
            worst = (d, r[0].to_string());
        }
    }
    assert_eq!(total, 189, "every row of the reference file");
    eprintln!(
        "facenox: {close}/{total} within 0.02; largest difference {:.4} ({})",
        worst.0, worst.1
    );
    assert!(
        same_pixels_off.is_empty(),
        "images decoded alike, scores apart: {same_pixels_off:?}"
    );
    assert!(
        close * 100 >= total * 95,
        "{close}/{total} within 0.02; largest {:.4} on {}",
        worst.0,
        worst.1
    );
}

/// Judges are fused by their declared weights: 3 and 1 give three quarters of the first
/// model's score and a quarter of the second's.
#[test]
fn judges_are_fused_by_their_declared_weights() {
    let text = include_str!("../../models/manifest.toml").replacen(
        "crop = { scale = 2.7, outside = \"shift\" }\nresize = \"bilinear\"\noutput = { activation = \"softmax\", live_index = 1, classes = 3 }\nweight = 1.0",
        "crop = { scale = 2.7, outside = \"shift\" }\nresize = \"bilinear\"\noutput = { activation = \"softmax\", live_index = 1, classes = 3 }\nweight = 3.0",
        1,
    );
    let manifest = Manifest::parse(&text).unwrap();
    assert_eq!(
        manifest
            .get("minifasnet_v2")
            .unwrap()
            .judge
            .as_ref()
            .unwrap()
            .weight,
        3.0
    );
    let p = Pipeline::load(
        PipelineConfig::new(models_dir()),
        &manifest,
        facelive_backends::default_backend(),
    )
    .unwrap();
    let opts = CheckOptions {
        rule: DecisionRule::Threshold(0.0),
        ..Default::default()
    };
    for rel in [
        "live/nuaa_ClientRaw_0001_00_00_02_167.jpg",
        "spoof/silentface_image_F1.jpg",
    ] {
        let v = p.check(&read(rel), &opts).unwrap();
        let (v2, v1se) = (v.per_model[0].live_score, v.per_model[1].live_score);
        let want = (3.0 * v2 + v1se) / 4.0;
        assert!((v.live_score.unwrap() - want).abs() < 1e-6, "{rel}");
        assert!(
            (v2 - v1se).abs() > 0.01,
            "{rel}: the two models must differ for this to test"
        );
    }
}

/// A pack whose detector is of a family this build cannot run is the configuration's
/// error, refused at load with the model's name, not a client's at a request.
#[test]
fn a_pack_with_a_family_this_build_cannot_run_fails_at_load() {
    let mut m = facelive_models::Manifest::builtin();
    m.pack.detector = "retinaface_mnet025_640".into();
    let cfg = facelive_pipeline::PipelineConfig::new(facelive_testdata::models_dir());
    let err = match facelive_pipeline::Pipeline::load(cfg, &m, facelive_backends::default_backend())
    {
        Ok(_) => panic!("a RetinaFace pack loaded"),
        Err(e) => e,
    };
    assert!(
        matches!(err, facelive_pipeline::PipelineError::Models(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("retinaface_mnet025_640") && text.contains("retinaface"),
        "{text}"
    );
}

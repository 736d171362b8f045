//! NHN Cloud Face Recognition's compare, as its API guide's client (curl, JSON with
//! `sourceImage.bytes` / `targetImage.bytes`, `?threshold=`) sends it, plus the secret key
//! facelive asks for; each answer read as the guide prescribes (always 200, the outcome in
//! `header`). Similarities and matches equal the pipeline's compare on the same images,
//! through the documented scale (the balanced match threshold at 90).

mod common;

use common::*;
use facelive_pipeline::{CheckOptions, Comparison};
use serde_json::Value;

const SOURCE: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_152.jpg";
const SAME: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_264.jpg";
const OTHER: &str = "ageitgey__examples_knn_examples_test_johnsnow_test1.jpg";

fn request(secret: &str, query: &str, source: &[u8], target: &[u8]) -> (String, Vec<u8>) {
    let body = format!(
        "{{\"sourceImage\":{{\"bytes\":\"{}\"}},\"targetImage\":{{\"bytes\":\"{}\"}}}}",
        b64(source),
        b64(target)
    )
    .into_bytes();
    let head = format!(
        "POST /nhn-face-reco/v1.0/appkeys/app1/compare{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         User-Agent: curl/7.88.1\r\nAccept: */*\r\nAuthorization: {secret}\r\n\
         Content-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    (head, body)
}

/// The answer as the guide's client reads it: 200 always; the data, or the result code.
fn read(status: u16, body: &[u8]) -> Result<Value, i64> {
    assert_eq!(status, 200, "NHN answers 200 for every request");
    let j: Value = serde_json::from_slice(body).unwrap();
    match j["header"]["isSuccessful"].as_bool() {
        Some(true) => Ok(j["data"].clone()),
        _ => Err(j["header"]["resultCode"].as_i64().unwrap()),
    }
}

/// The documented scale: piecewise linear through (0, 0), (balanced, 90), (1, 100).
fn percent(cosine: f32, balanced: f32) -> f32 {
    let c = cosine.clamp(0.0, 1.0);
    if c <= balanced {
        90.0 * c / balanced
    } else {
        90.0 + 10.0 * (c - balanced) / (1.0 - balanced)
    }
}

fn expected(source: &[u8], target: &[u8], cosine_threshold: f32) -> Comparison {
    pipeline()
        .compare(source, target, &CheckOptions::default(), cosine_threshold)
        .unwrap()
}

/// Every face of the answer, matched then unmatched: (similarity, matched).
fn faces(data: &Value) -> Vec<(f32, bool)> {
    let list = |k: &str, matched: bool| {
        data[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["similarity"].as_f64().unwrap() as f32, matched))
            .collect::<Vec<_>>()
    };
    let mut all = list("matchedFaceDetails", true);
    all.extend(list("unmatchedFaceDetails", false));
    all
}

#[tokio::test]
async fn the_guides_compare_request_gets_the_pipelines_faces_on_nhns_scale() {
    let s = start(config()).await;
    let balanced = pipeline()
        .match_thresholds()
        .expect("the default pack has an embedder")
        .balanced;
    let source = verify_image(SOURCE);
    for (target, threshold, want_matched) in [
        (verify_image(SAME), 90.0, 1),
        (verify_image(OTHER), 90.0, 0),
        // The same pair at the highest threshold: only an identical face would match.
        (verify_image(SAME), 100.0, 0),
        // Several faces: each compared, most similar first.
        (image("edge/two_faces.jpg"), 50.0, usize::MAX),
    ] {
        let query = format!("?threshold={threshold}");
        let (head, body) = request("secret1", &query, &source, &target);
        let (status, answer) = raw_exchange(&s, &head, &body).await;
        let data = read(status, &answer).expect("a compare answer");
        let cosine = if threshold <= 90.0 {
            balanced * threshold / 90.0
        } else {
            balanced + (1.0 - balanced) * (threshold - 90.0) / 10.0
        };
        let want = expected(&source, &target, cosine);
        let got = faces(&data);
        assert_eq!(got.len(), want.faces.len());
        let mut by_similarity = got.clone();
        by_similarity.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(
            got, by_similarity,
            "most similar first, matched before unmatched"
        );
        for ((similarity, matched), w) in got.iter().zip(&want.faces) {
            assert!((similarity - percent(w.similarity, balanced)).abs() < 1e-3);
            assert_eq!(*matched, w.same_person);
            assert_eq!(*matched, *similarity >= threshold);
        }
        let matched = data["matchedFaceDetailCount"].as_u64().unwrap() as usize;
        let unmatched = data["unmatchedFaceDetailCount"].as_u64().unwrap() as usize;
        assert_eq!(matched + unmatched, got.len());
        if want_matched == usize::MAX {
            assert!(got.len() >= 2, "two faces compared: {data}");
        } else {
            assert_eq!(matched, want_matched, "threshold {threshold}: {data}");
        }
        let source_face = &data["sourceFace"];
        assert_eq!(source_face["landmarks"].as_array().unwrap().len(), 5);
        assert_eq!(source_face["landmarks"][0]["type"], "leftEye");
        for k in ["x0", "y0", "x1", "y1"] {
            let v = source_face["bbox"][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} is a fraction");
        }
        assert_eq!(data["modelVersion"], "mobilefacenet");
    }
}

/// A compare embeds as a verify does (both faces detected in one full pass, aligned and
/// embedded from the full-resolution pixels), so its similarity is the verify's, which the
/// pipeline's agreement test holds to the reference recipe's within 0.01.
#[test]
fn a_compares_similarity_is_the_verifys() {
    let p = pipeline();
    let (source, target) = (verify_image(SOURCE), verify_image(SAME));
    let rule = facelive_pipeline::MatchRule::default();
    let opts = CheckOptions::default();
    let verified = p
        .verify(
            &target,
            facelive_pipeline::Reference::Image(&source),
            &opts,
            rule,
        )
        .unwrap();
    let compared = expected(&source, &target, 0.42);
    let (a, b) = (verified.similarity.unwrap(), compared.faces[0].similarity);
    assert!((a - b).abs() < 1e-6, "verify {a}, compare {b}");
}

/// An error case: its name, the secret, the query, source and target, the result code.
type Case<'a> = (&'a str, &'a str, &'a str, &'a [u8], &'a [u8], i64);

#[tokio::test]
async fn compare_errors_carry_nhns_result_codes() {
    let s = start(config()).await;
    let (live, other) = (verify_image(SOURCE), verify_image(OTHER));
    let blank = image("edge/no_face_blank.png");
    let cases: [Case; 8] = [
        (
            "bad secret",
            "wrong",
            "?threshold=90",
            &live,
            &other,
            -41005,
        ),
        ("no threshold", "secret1", "", &live, &other, -40000),
        (
            "threshold 0",
            "secret1",
            "?threshold=0",
            &live,
            &other,
            -40000,
        ),
        (
            "threshold text",
            "secret1",
            "?threshold=high",
            &live,
            &other,
            -40000,
        ),
        // A source without a face cannot be compared: an image error, said so.
        (
            "no source face",
            "secret1",
            "?threshold=90",
            &blank,
            &other,
            -45030,
        ),
        (
            "not an image",
            "secret1",
            "?threshold=90",
            b"not an image",
            &other,
            -45040,
        ),
        (
            "tiny target",
            "secret1",
            "?threshold=90",
            &live,
            &image("edge/tiny_image_40x40.png"),
            -45030,
        ),
        (
            "oversized",
            "secret1",
            "?threshold=90",
            &live,
            &vec![0xFF; 3_000_001],
            -45020,
        ),
    ];
    for (case, secret, query, source, target, code) in cases {
        let (head, body) = request(secret, query, source, target);
        let (status, answer) = raw_exchange(&s, &head, &body).await;
        assert_eq!(read(status, &answer).err(), Some(code), "{case}");
    }
    // A target without a face: success, nothing to match.
    let (head, body) = request("secret1", "?threshold=90", &live, &blank);
    let (status, answer) = raw_exchange(&s, &head, &body).await;
    let data = read(status, &answer).expect("a compare answer");
    assert_eq!(data["matchedFaceDetailCount"], 0);
    assert_eq!(data["unmatchedFaceDetailCount"], 0);
    // The body of one image missing: InvalidParam.
    let head = "POST /nhn-face-reco/v1.0/appkeys/app1/compare?threshold=90 HTTP/1.1\r\n\
                Host: 127.0.0.1\r\nAuthorization: secret1\r\nContent-Type: application/json\r\n\
                Content-Length: 2\r\nConnection: close\r\n\r\n";
    let (status, answer) = raw_exchange(&s, head, b"{}").await;
    assert_eq!(read(status, &answer).err(), Some(-40000));
}

#[tokio::test]
async fn a_compare_is_audited_by_its_match_alone() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.jsonl");
    let mut cfg = config();
    cfg.audit.path = Some(trail.clone());
    let s = start(cfg).await;
    let (source, target) = (verify_image(SOURCE), verify_image(SAME));
    let (head, body) = request("secret1", "?threshold=90", &source, &target);
    let (status, answer) = raw_exchange(&s, &head, &body).await;
    read(status, &answer).expect("a compare answer");
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&trail).unwrap_or_default();
        if text.lines().count() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line: Value = serde_json::from_str(text.trim()).expect("one line");
    let balanced = pipeline().match_thresholds().unwrap().balanced;
    let want = expected(&source, &target, balanced);
    assert_eq!(line["dialect"], "nhn_compare");
    assert_eq!(line["verify"]["outcome"], "matched");
    let similarity = line["verify"]["similarity"].as_f64().unwrap() as f32;
    assert!((similarity - want.faces[0].similarity).abs() < 1e-6);
    let threshold = line["verify"]["match_threshold"].as_f64().unwrap() as f32;
    assert!(
        (threshold - balanced).abs() < 1e-6,
        "90 is the balanced threshold"
    );
    for liveness_field in ["outcome", "live_score", "threshold", "pack", "timings"] {
        assert!(
            line.get(liveness_field).is_none(),
            "{liveness_field}: {line}"
        );
    }
    for secret in ["secret1", "app1"] {
        assert!(!text.contains(secret), "{secret} in the trail");
    }
}

//! Contract tests: the real server on 127.0.0.1, each dialect's documented requests (JSON
//! and multipart as in ../shared/spec/apis.md) with real dev images; status codes, response
//! shapes and values, and agreement with `facelive check` on the same image.

mod common;

use common::*;
use facelive_pipeline::{DecisionRule, OperatingPoint};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

fn file_part(rel: &str) -> Part {
    Part::bytes(image(rel)).file_name(rel.rsplit('/').next().unwrap().to_string())
}

#[tokio::test]
async fn native_json_and_multipart_give_the_verdict_of_facelive_check() {
    let s = start(config()).await;
    let want = reference(LIVE, DecisionRule::Point(OperatingPoint::Balanced));
    let url = format!("{}/v1/liveness", s.base);
    let (code, j) = body(
        s.client
            .post(&url)
            .bearer_auth("native-key")
            .json(&json!({"image": {"base64": b64(&image(LIVE))}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["outcome"], "live");
    assert_eq!(
        j["live_score"].as_f64().unwrap() as f32,
        want.live_score.unwrap()
    );
    assert_eq!(j["threshold"].as_f64().unwrap() as f32, want.threshold);
    assert_eq!(j["operating_point"], "balanced");
    assert_eq!(j["model_pack"]["name"], "silentface-yunet");
    let b = &j["face"]["box"];
    assert_eq!(
        b["x"].as_f64().unwrap() as f32,
        want.face.as_ref().unwrap().bbox.x
    );
    let f = &j["face"]["box_fraction"];
    assert!((f["x0"].as_f64().unwrap() - b["x"].as_f64().unwrap() / 640.0).abs() < 1e-6);
    for k in ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"] {
        assert!(j["face"]["landmarks"][k]["x"].is_number(), "{k}");
    }
    assert!(j["face"]["detection_score"].as_f64().unwrap() > 0.6);
    assert_eq!(j["per_model"].as_array().unwrap().len(), 2);
    assert!(j["quality"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["name"] == "face_size"));
    for k in ["decode_ms", "detect_ms", "judge_ms", "total_ms"] {
        assert!(j["timings"][k].is_number(), "{k}");
    }
    assert!(!j["request_id"].as_str().unwrap().is_empty());

    let form = Form::new()
        .part("image", file_part(LIVE))
        .text("operating_point", "strict");
    let (code, m) = body(
        s.client
            .post(&url)
            .bearer_auth("native-key")
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["live_score"], j["live_score"]);
    assert_eq!(m["operating_point"], "strict");
}

#[tokio::test]
async fn native_reports_spoof_retry_and_other_faces() {
    let s = start(config()).await;
    let url = format!("{}/v1/liveness", s.base);
    let send = |rel: &'static str| {
        let c = s.client.clone();
        let url = url.clone();
        async move {
            body(
                c.post(url)
                    .bearer_auth("native-key")
                    .multipart(Form::new().part("image", file_part(rel)))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (_, spoof) = send(SPOOF).await;
    assert_eq!(spoof["outcome"], "spoof");
    let (code, none) = send("edge/no_face_blank.png").await;
    assert_eq!(code, 200);
    assert_eq!(
        (none["outcome"].as_str(), none["retry_reason"].as_str()),
        (Some("retry"), Some("no_face"))
    );
    assert!(none["live_score"].is_null() && none["face"].is_null());
    let (_, two) = send("edge/two_faces.jpg").await;
    assert_eq!(two["other_faces"].as_array().unwrap().len(), 1);
    let (_, tiny) = send("edge/tiny_face.jpg").await;
    assert_eq!(
        (tiny["outcome"].as_str(), tiny["retry_reason"].as_str()),
        (Some("retry"), Some("face_size"))
    );
}

fn nhn_url(s: &Server, app: &str) -> String {
    format!("{}/v1.0/appkeys/{app}/spoofing", s.base)
}

#[tokio::test]
async fn nhn_json_and_multipart_report_every_face_in_nhn_shape() {
    let s = start(config()).await;
    let (code, j) = body(
        s.client
            .post(nhn_url(&s, "app1"))
            .header("Authorization", "secret1")
            .json(&json!({"image": {"bytes": b64(&image("edge/two_faces.jpg"))}, "spoofingCondition": "balanced"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["header"],
        json!({"isSuccessful": true, "resultCode": 0, "resultMessage": "Success"})
    );
    assert_eq!(j["data"]["faceDetailCount"], 2);
    let faces = j["data"]["faceDetails"].as_array().unwrap();
    assert_eq!(faces.len(), 2);
    for f in faces {
        for k in ["x0", "y0", "x1", "y1"] {
            let v = f["bbox"][k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} {v}");
        }
        let types: Vec<&str> = f["landmarks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["leftEye", "rightEye", "nose", "leftLip", "rightLip"]
        );
        assert!(f["spoofing"].is_boolean());
        assert!(f["confidence"].as_f64().unwrap() > 0.6);
    }
    // The larger (judged) face first, with the verdict facelive check gives.
    let want = reference(
        "edge/two_faces.jpg",
        DecisionRule::Point(OperatingPoint::Balanced),
    );
    assert_eq!(
        faces[0]["spoofing"],
        json!(want.outcome != facelive_pipeline::Outcome::Live)
    );
    let x0 = faces[0]["bbox"]["x0"].as_f64().unwrap() as f32;
    assert!((x0 - want.face.unwrap().bbox.x / 1160.0).abs() < 1e-5);

    let form = Form::new()
        .part("imageFile", file_part(LIVE))
        .text("spoofingCondition", "weak");
    let (code, m) = body(
        s.client
            .post(nhn_url(&s, "app1"))
            .header("Authorization", "secret1")
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["data"]["faceDetailCount"], 1);
    assert_eq!(m["data"]["faceDetails"][0]["spoofing"], false);
}

#[tokio::test]
async fn nhn_spoofing_condition_moves_the_decision() {
    let s = start(config()).await;
    let score = reference(MIDDLING, DecisionRule::Threshold(0.5))
        .live_score
        .unwrap();
    let t = facelive_pipeline::Thresholds::default();
    assert!(
        score > t.weak && score < t.strict,
        "the test image must score between weak and strict: {score}"
    );
    let mut spoofing = Vec::new();
    for cond in ["weak", "strict"] {
        let (_, j) = body(
            s.client
                .post(nhn_url(&s, "app1"))
                .header("Authorization", "secret1")
                .json(
                    &json!({"image": {"bytes": b64(&image(MIDDLING))}, "spoofingCondition": cond}),
                )
                .send()
                .await
                .unwrap(),
        )
        .await;
        spoofing.push(j["data"]["faceDetails"][0]["spoofing"].as_bool().unwrap());
    }
    assert_eq!(spoofing, [false, true]);
}

#[test]
fn nhn_fetches_an_image_url_from_an_allowed_network() {
    in_loopback_namespace(|| async {
        let (img_base, _) = image_server();
        let mut cfg = config();
        cfg.fetch.allow = vec!["127.0.0.1/32".parse().unwrap()];
        let s = start(cfg).await;
        let (code, j) = body(
            s.client
                .post(nhn_url(&s, "app1"))
                .header("Authorization", "secret1")
                .json(&json!({"image": {"url": format!("{img_base}/img/{LIVE}")}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{j}");
        assert_eq!(j["data"]["faceDetailCount"], 1);
        assert_eq!(j["data"]["faceDetails"][0]["spoofing"], false);
    });
}

#[tokio::test]
async fn accura_scores_in_percent_with_the_55_rule() {
    let s = start(config()).await;
    let url = format!("{}/v2/api/liveness", s.base);
    for (rel, status) in [(LIVE, "live"), (SPOOF, "spoof")] {
        let want = reference(rel, DecisionRule::Threshold(0.55))
            .live_score
            .unwrap();
        let (code, j) = body(
            s.client
                .post(&url)
                .header("Api-Key", "accura-key")
                .multipart(Form::new().part("liveness_image", file_part(rel)))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{j}");
        assert_eq!(j["status"], "success");
        assert_eq!(j["liveness_status"], status, "{rel}");
        assert_eq!(j["threshold"], 55.0);
        let pct = j["liveness_score"].as_f64().unwrap();
        assert!(
            (pct - want as f64 * 100.0).abs() <= 0.006,
            "{pct} vs {want}"
        );
    }
    // The browser form: the canvas's data URL in JSON, same verdict as the file.
    for (rel, status) in [(LIVE, "live"), (SPOOF, "spoof")] {
        let data_url = format!("data:image/jpeg;base64,{}", b64(&image(rel)));
        let (code, j) = body(
            s.client
                .post(&url)
                .header("Api-Key", "accura-key")
                .json(&json!({"liveness_image": data_url}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (code, j["liveness_status"].as_str()),
            (200, Some(status)),
            "{j}"
        );
    }
    // JSON without the image: the field is named.
    let (code, j) = body(
        s.client
            .post(&url)
            .header("Api-Key", "accura-key")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["error_code"].as_str()),
        (400, Some("missing_field")),
        "{j}"
    );
    assert!(
        j["message"].as_str().unwrap().contains("liveness_image"),
        "{j}"
    );
    // Text is neither form.
    let (code, j) = body(
        s.client
            .post(&url)
            .header("Api-Key", "accura-key")
            .header("Content-Type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["error_code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
}

#[tokio::test]
async fn jcv_analyses_images_0_and_reports_its_largest_face_position() {
    let s = start(config()).await;
    let url = format!("{}/v1/jcv/liveness", s.base);
    let want = reference("edge/two_faces.jpg", DecisionRule::Threshold(0.5));
    let (code, j) = body(
        s.client
            .post(&url)
            .header("X-API-Key", "jcv-key")
            .json(&json!({"images": [
                {"index": 0, "type": "RGB", "data": b64(&image("edge/two_faces.jpg"))},
                {"index": 1, "type": "RGB", "data": "ignored, not even base64"}
            ]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["status"], "ok");
    assert_eq!(
        j["score"].as_f64().unwrap() as f32,
        want.live_score.unwrap()
    );
    assert_eq!(j["threshold"], 0.5);
    assert_eq!(j["model"]["name"], "silentface-yunet");
    let b = want.face.unwrap().bbox;
    assert_eq!(
        j["position"],
        // Edges rounded to whole pixels (the box is inside this image).
        json!({"top": b.y.round() as i64, "left": b.x.round() as i64,
               "width": (b.x + b.width).round() as i64 - b.x.round() as i64,
               "height": (b.y + b.height).round() as i64 - b.y.round() as i64})
    );

    // autoRotate: without it the EXIF-rotated face is judged as stored (sideways).
    let send = |rotate: bool| {
        let c = s.client.clone();
        let url = url.clone();
        async move {
            body(c.post(url).header("X-API-Key", "jcv-key").json(&json!({"images": [{"index": 0, "type": "RGB", "data": b64(&image("edge/exif6_face.jpg"))}], "autoRotate": rotate})).send().await.unwrap()).await.1
        }
    };
    let upright = send(true).await;
    let stored = send(false).await;
    assert_eq!(upright["status"], "ok");
    assert_ne!(upright["position"], stored["position"]);
    // Upright, the image is 600 wide: the face lies within it.
    let right = upright["position"]["left"].as_i64().unwrap()
        + upright["position"]["width"].as_i64().unwrap();
    assert!(right <= 610, "{upright}");
}

#[tokio::test]
async fn spoofsense_endpoints_answer_in_their_shape_with_their_thresholds() {
    let s = start(config()).await;
    let score = reference(MIDDLING, DecisionRule::Threshold(0.5))
        .live_score
        .unwrap();
    for (path, thr) in [("antispoofing", 0.55f32), ("robust", 0.50)] {
        let (code, j) = body(
            s.client
                .post(format!("{}/{path}", s.base))
                .header("x-api-key", "ss-key")
                .json(&json!({"data": b64(&image(MIDDLING))}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{j}");
        assert_eq!(j["success"], true);
        assert_eq!(
            j["model_output"]["prob_real"].as_f64().unwrap() as f32,
            score
        );
        let want = if score >= thr { "real" } else { "spoof" };
        assert_eq!(j["model_output"]["pred_idx"], want, "{path}");
    }
    let (code, j) = body(
        s.client
            .post(format!("{}/antispoofing", s.base))
            .header("x-api-key", "ss-key")
            .json(&json!({"data": b64(&image(SPOOF))}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(j["model_output"]["pred_idx"], "spoof");
}

#[tokio::test]
async fn health_ready_info_metrics_and_docs() {
    let s = start(config()).await;
    let get = |p: &str| s.client.get(format!("{}{p}", s.base)).send();
    assert_eq!(get("/health").await.unwrap().status(), 200);
    let (code, ready) = body(get("/ready").await.unwrap()).await;
    assert_eq!((code, ready["status"].as_str()), (200, Some("ready")));
    let (_, info) = body(get("/info").await.unwrap()).await;
    assert_eq!(info["model_pack"]["name"], "silentface-yunet");
    assert_eq!(
        (
            info["engines"]["detector"].as_str(),
            info["engines"]["judges"].as_str()
        ),
        (Some("tract"), Some("tract"))
    );
    assert_eq!(info["thresholds"]["balanced"], 0.5);
    let dialects = info["dialects"].as_array().unwrap();
    assert_eq!(dialects.len(), 5);
    // Every dialect endpoint the server answers, from the same table as its routes.
    let served: Vec<&str> = dialects
        .iter()
        .flat_map(|d| d["endpoints"].as_array().unwrap())
        .map(|e| e.as_str().unwrap())
        .collect();
    for e in [
        "POST /v1/quality",
        "POST /v3/antispoofing",
        "POST /robust",
        "POST /nhn-face-reco/v1.0/appkeys/{appKey}/compare",
    ] {
        assert!(served.contains(&e), "{e} missing from /info: {served:?}");
    }
    let jcv = dialects.iter().find(|d| d["name"] == "jcv").unwrap();
    assert_eq!(jcv["formats"], serde_json::json!(["JPEG", "PNG", "GIF"]));
    assert_eq!(jcv["vendor_thresholds"]["/v1/jcv/liveness"], 0.5);
    assert_eq!(jcv["max_file_bytes"], 4_000_000);
    // One request, then its count and the stage histogram are in the metrics.
    native_post(&s, LIVE).await;
    let m = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        m.contains("facelive_requests_total{dialect=\"native\",outcome=\"live\"}"),
        "{m}"
    );
    assert!(
        m.contains("facelive_stage_seconds_bucket{stage=\"detect\""),
        "{m}"
    );
    assert!(
        m.contains("facelive_request_duration_seconds_bucket{dialect=\"native\""),
        "{m}"
    );
    let docs = get("/docs").await.unwrap().text().await.unwrap();
    assert!(
        docs.contains("/openapi.json") && !docs.contains("https://"),
        "docs must work offline"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = facelive_router::AppState::new(pipeline(), config()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(facelive_router::serve(state, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Wait until warm and listening.
    while client
        .get(format!("{base}/ready"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let big = json!({"image": {"base64": b64(&image("live/deepface_img49.jpg"))}});
    let in_flight = tokio::spawn(
        client
            .post(format!("{base}/v1/liveness"))
            .bearer_auth("native-key")
            .json(&big)
            .send(),
    );
    // Stop only once the request is being worked on.
    for attempt in 0.. {
        assert!(attempt < 2000, "the request was never seen in flight");
        let m = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.lines()
            .any(|l| l.starts_with("facelive_requests_in_flight") && l.ends_with(" 1"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200, "the request in flight is answered");
    server.await.unwrap().unwrap();
    // And the server is gone.
    assert!(client.get(format!("{base}/health")).send().await.is_err());
}

/// After the stop signal the server drains: `/ready` fails so load balancers stop sending,
/// requests that still arrive are served, and only then does the listener close.
#[tokio::test]
async fn a_stopping_server_drains_before_closing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut cfg = config();
    // Long enough for the two requests below on a loaded machine.
    cfg.connections.drain = std::time::Duration::from_secs(10);
    let state = facelive_router::AppState::new(pipeline(), cfg).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(facelive_router::serve(state, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ready = || async {
        let r = client.get(format!("{base}/ready")).send().await.ok()?;
        Some((r.status().as_u16(), r.json::<Value>().await.ok()?))
    };
    while ready().await.map(|r| r.0) != Some(200) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    let mut attempts = 0;
    let (status, body) = loop {
        let (status, body) = ready().await.expect("still listening while draining");
        if status != 200 {
            break (status, body);
        }
        attempts += 1;
        assert!(attempts < 1000, "/ready never stopped answering 200");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!((status, body["status"].as_str()), (503, Some("draining")));
    let (status, verdict) = native_json(
        &Server {
            base: base.clone(),
            client: client.clone(),
        },
        LIVE,
    )
    .await;
    assert_eq!(
        status, 200,
        "a request arriving while draining is served: {verdict}"
    );
    server.await.unwrap().unwrap();
    assert!(client.get(format!("{base}/health")).send().await.is_err());
}

/// A pipeline that finds every image too blurred to judge: an enforced quality failure.
fn blur_intolerant() -> std::sync::Arc<facelive_pipeline::Pipeline> {
    let mut cfg = facelive_pipeline::PipelineConfig::new(facelive_testdata::models_dir());
    cfg.quality.min_sharpness = 1e12;
    std::sync::Arc::new(
        facelive_pipeline::Pipeline::load(
            cfg,
            &facelive_models::Manifest::builtin(),
            facelive_backends::default_backend(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn an_enforced_quality_failure_is_retry_in_every_dialect_never_spoof() {
    let s = start_with(blur_intolerant(), config(), true).await;
    let data = b64(&image(LIVE));
    let (code, native) = body(
        s.client
            .post(format!("{}/v1/liveness", s.base))
            .bearer_auth("native-key")
            .json(&json!({"image": {"base64": data}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(native["outcome"], "retry");
    assert_eq!(native["retry_reason"], "sharpness");
    assert!(native["live_score"].is_null());
    let failed: Vec<&Value> = native["quality"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false && c["policy"] == "enforce")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["hint"], "hold still");

    // NHN: the face is not analysed, so it is not reported (never "spoofing": true).
    let (code, nhn) = body(
        s.client
            .post(format!("{}/v1.0/appkeys/app1/spoofing", s.base))
            .header("Authorization", "secret1")
            .json(&json!({"image": {"bytes": data}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(nhn["header"]["isSuccessful"], true);
    assert_eq!(nhn["data"]["faceDetailCount"], 0);

    let (_, accura) = body(
        s.client
            .post(format!("{}/v2/api/liveness", s.base))
            .header("Api-Key", "accura-key")
            .multipart(Form::new().part("liveness_image", file_part(LIVE)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(accura["liveness_status"], "retry");
    assert_eq!(accura["message"], "hold still");
    assert!(accura["liveness_score"].is_null());

    let (_, jcv) = body(
        s.client
            .post(format!("{}/v1/jcv/liveness", s.base))
            .header("X-API-Key", "jcv-key")
            .json(&json!({"images": [{"index": 0, "type": "RGB", "data": data}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (jcv["status"].as_str(), jcv["live"].as_bool()),
        (Some("retry"), Some(false))
    );
    assert_eq!(jcv["retry_reason"], "sharpness");
    assert!(
        jcv["position"]["width"].as_i64().unwrap() > 0,
        "the face's position is still given"
    );

    let (_, ss) = body(
        s.client
            .post(format!("{}/antispoofing", s.base))
            .header("x-api-key", "ss-key")
            .json(&json!({"data": data}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (ss["success"].as_bool(), ss["error_code"].as_str()),
        (Some(false), Some("IMAGE_BLURRY"))
    );
    assert_eq!(ss["message"], "hold still");
    assert!(ss["model_output"].is_null());
}

/// WebP and GIF decode in the pipeline; each dialect takes the formats its vendor lists:
/// native and Accura all four, JCV JPEG, PNG and GIF, NHN and SpoofSense PNG and JPEG.
#[tokio::test]
async fn formats_follow_each_vendors_list() {
    let s = start(config()).await;
    for f in ["edge/face.webp", "edge/face.gif"] {
        let want = reference(f, DecisionRule::Point(OperatingPoint::Balanced));
        let (code, j) = native_json(&s, f).await;
        assert_eq!(code, 200, "{j}");
        assert_eq!(j["outcome"], json!(want.outcome), "{f}");
        assert_eq!(
            j["live_score"].as_f64().map(|x| x as f32),
            want.live_score,
            "{f}"
        );
    }
    let jcv = |f: &str| {
        s.client
            .post(format!("{}/v1/jcv/liveness", s.base))
            .header("X-API-Key", "jcv-key")
            .json(&json!({"images": [{"index": 0, "type": "RGB", "data": b64(&image(f))}]}))
            .send()
    };
    let (code, j) = body(jcv("edge/face.gif").await.unwrap()).await;
    let want = reference("edge/face.gif", DecisionRule::Threshold(0.5));
    assert_eq!(code, 200, "{j}");
    assert_eq!(
        j["score"].as_f64().map(|x| x as f32),
        want.live_score,
        "{j}"
    );
    let (code, j) = body(jcv("edge/face.webp").await.unwrap()).await;
    assert_eq!(
        (code, j["error"]["code"].as_str()),
        (415, Some("unsupported_format")),
        "{j}"
    );
    assert!(
        j["error"]["message"].as_str().unwrap().contains("GIF"),
        "{j}"
    );
    let (code, j) = body(
        s.client
            .post(format!("{}/v1.0/appkeys/app1/spoofing", s.base))
            .header("Authorization", "secret1")
            .json(&json!({"image": {"bytes": b64(&image("edge/face.webp"))}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["header"]["resultCode"].as_i64()),
        (200, Some(-45040)),
        "{j}"
    );
}

/// JCV: no face is its documented "face not found" error; `position` stays inside the
/// image on tight crops (where the detector's box reaches past an edge); the platform's
/// `api-key` header and a `model` field are accepted.
#[tokio::test]
async fn jcv_no_face_is_an_error_and_positions_stay_inside_the_image() {
    let s = start(config()).await;
    let post = |header: &'static str, req: Value| {
        s.client
            .post(format!("{}/v1/jcv/liveness", s.base))
            .header(header, "jcv-key")
            .json(&req)
            .send()
    };
    let item = |f: &str| json!({"images": [{"index": 0, "type": "RGB", "data": b64(&image(f))}]});
    let (code, j) = body(
        post("X-API-Key", item("edge/no_face_blank.png"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["error"]["code"].as_str()),
        (422, Some("face_not_found")),
        "{j}"
    );

    let crops: Vec<String> = facelive_testdata::manifest()
        .into_iter()
        .map(|r| r.file)
        .filter(|f| f.contains("/crop_"))
        .collect();
    let mut past_an_edge = 0;
    for f in &crops {
        let want = reference(f, DecisionRule::Threshold(0.5));
        let Some(face) = want.face.as_ref() else {
            continue;
        };
        let (w, h) = (want.image.width as i64, want.image.height as i64);
        let b = &face.bbox;
        if b.x < 0.0 || b.y < 0.0 || b.x + b.width > w as f32 || b.y + b.height > h as f32 {
            past_an_edge += 1;
        }
        let (code, j) = body(post("X-API-Key", item(f)).await.unwrap()).await;
        assert_eq!(code, 200, "{f}: {j}");
        let p = |k: &str| j["position"][k].as_i64().unwrap();
        assert!(p("left") >= 0 && p("top") >= 0, "{f}: {j}");
        assert!(
            p("left") + p("width") <= w && p("top") + p("height") <= h,
            "{f}: {j}"
        );
        assert!(p("width") > 0 && p("height") > 0, "{f}: {j}");
    }
    assert!(
        past_an_edge > 0,
        "no crop has a box past an edge: the clamp is untested"
    );

    let mut req = item(LIVE);
    req["model"] = json!("liveness-v1");
    let (code, j) = body(post("api-key", req).await.unwrap()).await;
    let want = reference(LIVE, DecisionRule::Threshold(0.5));
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["score"].as_f64().map(|x| x as f32), want.live_score);
}

/// The route walk: every route the server answers is in /openapi.json with its method,
/// every documented operation is answered (not 404 or 405), and an unauthenticated call
/// to each check gets one of the statuses documented for it.
#[tokio::test]
async fn openapi_documents_every_route_and_its_statuses() {
    let s = start(config()).await;
    let (code, api) = body(
        s.client
            .get(format!("{}/openapi.json", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(api["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let served = facelive_router::routes();
    for (method, path) in &served {
        let m = method.as_str().to_ascii_lowercase();
        assert!(
            api["paths"][path][&m].is_object(),
            "{method} {path} missing from openapi.json"
        );
    }
    let documented = api["paths"].as_object().unwrap();
    assert_eq!(
        documented.len(),
        served.len(),
        "documented paths that are not served"
    );
    for (path, item) in documented {
        for (m, op) in item.as_object().unwrap() {
            let method: reqwest::Method = m.to_ascii_uppercase().parse().unwrap();
            assert!(
                served
                    .iter()
                    .any(|(sm, sp)| sm.as_str() == method.as_str() && sp == path),
                "{m} {path} documented, not served"
            );
            // NHN's `{appKey}`: any value reaches the handler.
            let url = format!("{}{}", s.base, path.replace("{appKey}", "wrong-app-key"));
            let resp = s.client.request(method.clone(), url).send().await.unwrap();
            let status = resp.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{m} {path} answered {status}"
            );
            let statuses = op["responses"].as_object().unwrap();
            assert!(
                statuses.contains_key(&status.to_string()),
                "{m} {path} answered {status}, documented {:?}",
                statuses.keys().collect::<Vec<_>>()
            );
        }
    }
    // Statuses come from the error mapping: the native check documents 401, 413, 429, 503
    // and 504; SpoofSense its gateway's 403; NHN answers everything with 200.
    let responses = |p: &str| {
        api["paths"][p]["post"]["responses"]
            .as_object()
            .unwrap()
            .clone()
    };
    for st in [
        "200", "400", "401", "408", "413", "415", "422", "429", "500", "503", "504",
    ] {
        assert!(
            responses("/v1/liveness").contains_key(st),
            "native lacks {st}"
        );
    }
    assert!(responses("/antispoofing").contains_key("403"));
    assert!(responses("/v3/antispoofing").contains_key("403"));
    assert_eq!(
        responses("/v1.0/appkeys/{appKey}/spoofing")
            .keys()
            .collect::<Vec<_>>(),
        ["200"]
    );
    let compare = "/nhn-face-reco/v1.0/appkeys/{appKey}/compare";
    assert_eq!(responses(compare).keys().collect::<Vec<_>>(), ["200"]);
    let params = api["paths"][compare]["post"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "threshold" && p["in"] == "query" && p["required"] == true),
        "{params:?}"
    );
    let jcv = &api["paths"]["/v1/jcv/liveness"]["post"]["description"];
    assert!(jcv.as_str().unwrap().contains("JPEG, PNG, GIF"), "{jcv}");
    assert!(api["components"]["schemas"]["NativeResponse"].is_object());
}

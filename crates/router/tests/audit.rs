//! The decision audit trail: one JSON line per judged request, with who asked (a hash of
//! the key or the session id), what was decided and by which pack; never image bytes, keys,
//! tokens or URLs. Capture guidance decides nothing and is not in it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The trail's lines once there are `n` (the writer runs on its own thread).
async fn lines(path: &Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} lines in {}", path.display());
}

#[test]
fn every_judged_request_leaves_one_line_and_nothing_secret() {
    in_loopback_namespace(|| async {
        let dir = tempfile::tempdir().unwrap();
        let trail = dir.path().join("audit.jsonl");
        let (img_base, _) = image_server();
        let mut cfg = config();
        cfg.fetch.allow = vec!["127.0.0.1/32".parse().unwrap()];
        cfg.audit.path = Some(trail.clone());
        let s = start(cfg).await;
        let native = format!("{}/v1/liveness", s.base);
        let url = format!("{img_base}/img/{LIVE}");
        let post = |body: Value, bearer: &str, id: &str| {
            s.client
                .post(&native)
                .bearer_auth(bearer)
                .header("x-request-id", id)
                .json(&body)
                .send()
        };
        let live = b64(&image(LIVE));
        assert_eq!(
            post(json!({"image": {"base64": live}}), "native-key", "by-key")
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            post(json!({"image": {"url": url}}), "native-key", "by-url")
                .await
                .unwrap()
                .status(),
            200
        );
        let session: Value = s
            .client
            .post(format!("{}/v1/sessions", s.base))
            .bearer_auth("native-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session["token"].as_str().unwrap().to_string();
        let guidance = s
            .client
            .post(format!("{}/v1/quality", s.base))
            .bearer_auth(&token)
            .json(&json!({"image": {"base64": live}}))
            .send()
            .await
            .unwrap();
        assert_eq!(guidance.status(), 200);
        let spoof = json!({"image": {"base64": b64(&image(SPOOF))}, "operating_point": "strict"});
        assert_eq!(post(spoof, &token, "by-token").await.unwrap().status(), 200);
        let accura = s
            .client
            .post(format!("{}/v2/api/liveness", s.base))
            .header("Api-Key", "accura-key")
            .header("x-request-id", "by-accura")
            .multipart(reqwest::multipart::Form::new().part(
                "liveness_image",
                reqwest::multipart::Part::bytes(image(LIVE)).file_name("f.jpg"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(accura.status(), 200);

        let got = lines(&trail, 4).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read_to_string(&trail).unwrap();
        assert_eq!(
            text.lines().count(),
            4,
            "guidance is not a decision:\n{text}"
        );
        let by: std::collections::HashMap<&str, &Value> = got
            .iter()
            .map(|l| (l["request_id"].as_str().unwrap(), l))
            .collect();
        let key_id = by["by-key"]["key_id"].as_str().unwrap();
        assert!(key_id.starts_with("key:") && key_id.len() == 16, "{key_id}");
        assert_eq!(by["by-url"]["key_id"], key_id);
        assert_ne!(by["by-accura"]["key_id"], key_id, "each key its own id");
        let session_id = token.split('.').nth(1).unwrap();
        assert_eq!(by["by-token"]["key_id"], format!("session:{session_id}"));
        assert_eq!(by["by-key"]["dialect"], "native");
        assert_eq!(by["by-accura"]["dialect"], "accura");
        assert_eq!(by["by-key"]["outcome"], "live");
        assert_eq!(by["by-token"]["outcome"], "spoof");
        assert_eq!(by["by-token"]["operating_point"], "strict");
        for l in &got {
            assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
            assert!(l["live_score"].as_f64().is_some(), "{l}");
            assert!(l["threshold"].as_f64().is_some(), "{l}");
            assert_eq!(l["pack"]["sha256"].as_str().unwrap().len(), 64, "{l}");
            assert!(l["pack"]["name"].as_str().is_some(), "{l}");
            assert_eq!(l["face_box"].as_object().map(|b| b.len()), Some(4), "{l}");
            assert!(
                l["quality"].as_array().is_some_and(|q| !q.is_empty()),
                "{l}"
            );
            assert!(l["timings"]["total_ms"].as_f64().is_some(), "{l}");
        }
        // The never-list: no key, token, URL or run of image data.
        for secret in [
            "native-key",
            "accura-key",
            token.as_str(),
            url.as_str(),
            "/img/",
        ] {
            assert!(!text.contains(secret), "{secret:?} in the trail");
        }
        assert!(!text.contains(&live[4000..4064]), "image data in the trail");
    });
}

#[tokio::test]
async fn an_audit_path_that_cannot_be_written_fails_at_start() {
    let mut cfg = config();
    cfg.audit.path = Some("/nonexistent-dir/audit.jsonl".into());
    let pipeline = pipeline();
    let err = match facelive_router::AppState::new(pipeline, cfg) {
        Ok(_) => panic!("started with an unwritable audit path"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("audit log"), "{err}");
}

/// A trail that cannot be written (a full disk: /dev/full) never fails a request; the lost
/// lines are counted in /metrics, and `/ready` says the trail is failing.
#[tokio::test]
async fn a_failing_trail_never_fails_a_request_and_is_counted() {
    let mut cfg = config();
    cfg.audit.path = Some("/dev/full".into());
    let s = start(cfg).await;
    let answer = s
        .client
        .post(format!("{}/v1/liveness", s.base))
        .bearer_auth("native-key")
        .json(&json!({"image": {"base64": b64(&image(LIVE))}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut counted = String::new();
    for _ in 0..100 {
        let metrics = s
            .client
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if let Some(l) = metrics
            .lines()
            .find(|l| l.starts_with("facelive_audit_failures_total{reason=\"write\"}"))
        {
            counted = l.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(counted.ends_with(" 1"), "{counted:?}");
    // The replica says it cannot keep its trail: out of rotation until a write succeeds.
    let ready = s
        .client
        .get(format!("{}/ready", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "audit failing");
}

//! The capture page's server side: the page and its module are served from the binary,
//! session tokens (issued for the native key, single use for a liveness check, refused when
//! forged, expired or used), and the guidance endpoint that skips the anti-spoof models.

mod common;

use std::time::Duration;

use common::*;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

async fn new_session(s: &Server, key: &str) -> (u16, Value) {
    body(
        s.client
            .post(format!("{}/v1/sessions", s.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post_image(s: &Server, path: &str, bearer: &str, rel: &str) -> (u16, Value) {
    let form = Form::new().part("image", Part::bytes(image(rel)).file_name("f.jpg"));
    body(
        s.client
            .post(format!("{}{path}", s.base))
            .bearer_auth(bearer)
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_session_token_guides_freely_and_judges_once() {
    let s = start(config()).await;
    let (status, issued) = new_session(&s, "native-key").await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(issued["expires_in"], 300);

    for _ in 0..3 {
        let (status, g) = post_image(&s, "/v1/quality", &token, LIVE).await;
        assert_eq!((status, &g["fit"]), (200, &Value::Bool(true)), "{g}");
    }
    let (status, v) = post_image(&s, "/v1/liveness", &token, LIVE).await;
    assert_eq!(status, 200, "{v}");
    let want = reference(
        LIVE,
        facelive_pipeline::DecisionRule::Point(facelive_pipeline::OperatingPoint::Balanced),
    );
    assert_eq!(
        v["live_score"].as_f64().unwrap() as f32,
        want.live_score.unwrap()
    );

    // Used: neither a second check nor more guidance.
    for path in ["/v1/liveness", "/v1/quality"] {
        let (status, e) = post_image(&s, path, &token, LIVE).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (401, Some("session_used")),
            "{path}"
        );
    }
    // A token does not make tokens, and a wrong key gets none.
    let fresh = new_session(&s, "native-key").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(new_session(&s, &fresh).await.0, 401);
    assert_eq!(new_session(&s, "wrong").await.0, 401);
    // Forged: another signature, or a changed expiry.
    let forged = format!("{}AAAA", &fresh[..fresh.len() - 4]);
    let (status, e) = post_image(&s, "/v1/liveness", &forged, LIVE).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("session_invalid"))
    );
    let mut parts: Vec<&str> = fresh.split('.').collect();
    let later = (parts[2].parse::<u64>().unwrap() + 3600).to_string();
    parts[2] = &later;
    let (status, e) = post_image(&s, "/v1/quality", &parts.join("."), LIVE).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("session_invalid"))
    );
    // The API key itself still works as before.
    assert_eq!(
        post_image(&s, "/v1/liveness", "native-key", LIVE).await.0,
        200
    );
}

#[tokio::test]
async fn an_expired_session_token_is_refused() {
    let mut cfg = config();
    cfg.sessions.ttl = Duration::from_secs(1);
    let s = start(cfg).await;
    let token = new_session(&s, "native-key").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, e) = post_image(&s, "/v1/quality", &token, LIVE).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (401, Some("session_expired"))
    );
}

#[tokio::test]
async fn guidance_says_what_to_change_without_judging() {
    let s = start(config()).await;
    let (status, g) = post_image(&s, "/v1/quality", "native-key", LIVE).await;
    assert_eq!(status, 200);
    assert_eq!(g["fit"], true, "{g}");
    assert!(g["face"]["box"]["width"].as_f64().unwrap() > 60.0);
    assert!(
        g.get("live_score").is_none() && g["timings"]["judge_ms"] == 0.0,
        "{g}"
    );

    let (_, g) = post_image(&s, "/v1/quality", "native-key", "edge/tiny_face.jpg").await;
    assert_eq!(
        (&g["fit"], g["retry_reason"].as_str()),
        (&Value::Bool(false), Some("face_size"))
    );
    assert!(
        g["hints"]
            .as_array()
            .unwrap()
            .contains(&"move closer".into()),
        "{g}"
    );

    let (_, g) = post_image(&s, "/v1/quality", "native-key", "edge/no_face_blank.png").await;
    assert_eq!(g["fit"], false);
    assert!(
        g["hints"]
            .as_array()
            .unwrap()
            .contains(&"put your face inside the frame".into()),
        "{g}"
    );
}

#[tokio::test]
async fn the_capture_page_and_its_module_come_from_the_binary() {
    let s = start(config()).await;
    for (path, ctype, needle) in [
        ("/capture", "text/html", "/capture/page.js"),
        ("/capture/page.js", "text/javascript", "facelive-capture.js"),
        (
            "/capture/facelive-capture.js",
            "text/javascript",
            "export async function capture",
        ),
    ] {
        let resp = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let got = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(got.starts_with(ctype), "{path}: {got}");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        assert!(text.contains(needle), "{path}");
        if path == "/capture" {
            // The browser then loads nothing from anywhere but this server.
            assert!(csp.unwrap().contains("default-src 'self'"));
        }
    }
    let docs = s
        .client
        .get(format!("{}/docs", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(docs.contains("href=\"/capture\""));
}

/// Slow uploads held open with `token` on the guidance endpoint (which does not use the
/// token up): each holds one of the token's places until it is dropped.
async fn slow_uploads(s: &Server, token: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/quality HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held
}

/// Holders of session tokens (end users' browsers) cannot lock the integrator out: tokens
/// have places of their own, two each by default, apart from the key that made them.
#[tokio::test]
async fn token_holders_never_take_the_keys_places() {
    let mut cfg = config();
    cfg.limits.per_key_requests = 2;
    let s = start(cfg).await;
    let mut tokens = Vec::new();
    let mut held = Vec::new();
    for _ in 0..3 {
        let (code, j) = new_session(&s, "native-key").await;
        assert_eq!(code, 201, "{j}");
        let t = j["token"].as_str().unwrap().to_string();
        held.extend(slow_uploads(&s, &t, 2).await);
        tokens.push(t);
    }
    // Six token uploads in flight, three times the key's own places.
    let (code, j) = post_image(&s, "/v1/quality", &tokens[0], LIVE).await;
    assert_eq!(code, 429, "{j}");
    assert_eq!(j["error"]["code"], "too_many_requests");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(msg.contains("session token"), "{msg}");
    // The key's own requests are all answered.
    let (a, b) = tokio::join!(
        post_image(&s, "/v1/liveness", "native-key", LIVE),
        post_image(&s, "/v1/liveness", "native-key", LIVE)
    );
    for (code, j) in [a, b] {
        assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
    }
    // A token refused for load is not used up: once its uploads end, it judges once.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, j) = post_image(&s, "/v1/liveness", &tokens[0], LIVE).await;
    assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
}

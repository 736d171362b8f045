//! Every NHN result code, every SpoofSense error_code and each native error, each produced
//! by sending the input it names to the real server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use facelive_backends::{Backend, BackendError, Model, Tensor};
use facelive_models::Manifest;
use facelive_pipeline::{Pipeline, PipelineConfig};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An engine whose every inference fails: the service must answer, not fall over.
struct FailingEngine;
struct FailingModel(Vec<usize>);

impl Backend for FailingEngine {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn load_with_outputs(
        &self,
        _: &std::path::Path,
        shape: &[usize],
        _: &[String],
    ) -> Result<Arc<dyn Model>, BackendError> {
        Ok(Arc::new(FailingModel(shape.to_vec())))
    }
}

impl Model for FailingModel {
    fn input_shape(&self) -> &[usize] {
        &self.0
    }
    fn output_names(&self) -> &[String] {
        // YuNet's heads and the embedder's output, which the pipeline looks up when it
        // loads.
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        NAMES.get_or_init(|| {
            ["cls", "obj", "bbox", "kps"]
                .iter()
                .flat_map(|h| [8, 16, 32].map(|s| format!("{h}_{s}")))
                .chain(["embedding".to_string()])
                .collect()
        })
    }
    fn run(&self, _: Tensor) -> Result<Vec<Tensor>, BackendError> {
        Err(BackendError::Run("simulated engine failure".into()))
    }
}

async fn failing_server() -> Server {
    let p = Pipeline::load(
        PipelineConfig::new(facelive_testdata::models_dir()),
        &Manifest::builtin(),
        Arc::new(FailingEngine) as Arc<dyn facelive_backends::Backend>,
    )
    .unwrap();
    start_with(Arc::new(p), config(), false).await
}

async fn nhn(s: &Server, app: &str, secret: &str, req: Value) -> (u16, i32, Value) {
    let (code, j) = body(
        s.client
            .post(format!("{}/v1.0/appkeys/{app}/spoofing", s.base))
            .header("Authorization", secret)
            .json(&req)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "NHN answers 200 for all requests: {j}");
    assert_eq!(
        j["header"]["isSuccessful"],
        json!(j["header"]["resultCode"] == 0),
        "{j}"
    );
    (code, j["header"]["resultCode"].as_i64().unwrap() as i32, j)
}

fn live_bytes() -> Value {
    json!({"bytes": b64(&image(LIVE))})
}

#[test]
fn nhn_result_codes_each_come_from_the_case_they_name() {
    in_loopback_namespace(|| async {
        let (img_base, img_port) = image_server();
        let mut cfg = config();
        cfg.fetch.timeout = Duration::from_secs(1);
        // Only 127.0.0.1 is allowed, and only for the slow and redirect cases below.
        cfg.fetch.allow = vec!["127.0.0.1/32".parse().unwrap()];
        let s = start(cfg).await;
        let default_rules = start(config()).await;

        assert_eq!(
            nhn(&s, "app1", "secret1", json!({"image": live_bytes()}))
                .await
                .1,
            0
        );
        // -40000 InvalidParam
        for req in [
            json!({}),
            json!({"image": {}}),
            json!({"image": {"url": "https://example.com/a.jpg", "bytes": "aGk="}}),
            json!({"image": live_bytes(), "spoofingCondition": "paranoid"}),
        ] {
            let (code, rc, j) = nhn(&s, "app1", "secret1", req.clone()).await;
            assert_eq!((code, rc), (200, -40000), "{req} -> {j}");
            assert_eq!(j["header"]["resultMessage"], "InvalidParam");
        }
        // -41005 UnauthorizedAppKeyOrSecretKey: wrong secret, unknown appKey
        assert_eq!(
            nhn(&s, "app1", "wrong", json!({"image": live_bytes()}))
                .await
                .1,
            -41005
        );
        assert_eq!(
            nhn(&s, "nope", "secret1", json!({"image": live_bytes()}))
                .await
                .1,
            -41005
        );
        // -45020 ImageTooLargeException: over 3,000,000 bytes
        let big = vec![0xFFu8; 3_000_001];
        let (code, rc, _) = nhn(
            &s,
            "app1",
            "secret1",
            json!({"image": {"bytes": b64(&big)}}),
        )
        .await;
        assert_eq!((code, rc), (200, -45020));
        // -45030 InvalidImageParameterException: bad base64; an image under 80x80
        assert_eq!(
            nhn(
                &s,
                "app1",
                "secret1",
                json!({"image": {"bytes": "%%% not base64 %%%"}})
            )
            .await
            .1,
            -45030
        );
        let tiny = json!({"image": {"bytes": b64(&image("edge/tiny_image_40x40.png"))}});
        assert_eq!(nhn(&s, "app1", "secret1", tiny).await.1, -45030);
        // A face under 60x60 px (the input guide's minimum) is not analysed: success, and
        // no face reported (tiny_face.jpg: a 55 px face).
        let small = json!({"image": {"bytes": b64(&image("edge/tiny_face.jpg"))}});
        let (_, rc, j) = nhn(&s, "app1", "secret1", small).await;
        assert_eq!(
            (rc, j["data"]["faceDetailCount"].as_u64()),
            (0, Some(0)),
            "{j}"
        );
        // -45040 InvalidImageFormatException: GIF, and text named .png
        for f in ["edge/face.gif", "edge/text.png"] {
            let (code, rc, _) = nhn(
                &s,
                "app1",
                "secret1",
                json!({"image": {"bytes": b64(&image(f))}}),
            )
            .await;
            assert_eq!((code, rc), (200, -45040), "{f}");
        }
        // -45050 InvalidImageURLException: forbidden port, loopback by default, bad scheme,
        // and a redirect that leaves the allowed network
        for (server, url) in [
            (&s, "http://example.com:8080/a.jpg".to_string()),
            (&s, "ftp://example.com/a.jpg".to_string()),
            (&default_rules, format!("{img_base}/img/{LIVE}")),
            (&default_rules, "http://localhost:10500/a.jpg".to_string()),
            (
                &s,
                format!("{img_base}/redirect/http://127.0.0.2:{img_port}/img/{LIVE}"),
            ),
            (
                &s,
                format!("{img_base}/redirect/http://169.254.169.254/latest/meta-data/"),
            ),
        ] {
            let (code, rc, j) =
                nhn(server, "app1", "secret1", json!({"image": {"url": url}})).await;
            assert_eq!((code, rc), (200, -45050), "{url} -> {j}");
        }
        // -45060 ImageTimeoutError: a server that never finishes
        let t = std::time::Instant::now();
        let (code, rc, _) = nhn(
            &s,
            "app1",
            "secret1",
            json!({"image": {"url": format!("{img_base}/slow")}}),
        )
        .await;
        assert_eq!((code, rc), (200, -45060));
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "the download deadline must cut it short"
        );
        // -50000 InternalServerError: the inference engine fails
        let broken = failing_server().await;
        let (code, rc, j) = nhn(&broken, "app1", "secret1", json!({"image": live_bytes()})).await;
        assert_eq!((code, rc), (200, -50000), "{j}");
        assert_eq!(j["header"]["resultMessage"], "InternalServerError");
    });
}

async fn spoofsense(s: &Server, key: &str, body_json: Value) -> (u16, Value) {
    body(
        s.client
            .post(format!("{}/antispoofing", s.base))
            .header("x-api-key", key)
            .json(&body_json)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// SpoofSense answers everything but a bad key, an oversized body and server trouble with
/// 200 and `success: false` (its API Usage page).
#[tokio::test]
async fn spoofsense_error_codes_each_come_from_the_case_they_name() {
    let s = start(config()).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "INVALID_IMAGE_PAYLOAD"),
        (json!({"data": ""}), "INVALID_IMAGE_PAYLOAD"),
        (json!({"data": "***"}), "INVALID_IMAGE_PAYLOAD"),
        (
            json!({"data": b64(&image("edge/truncated.jpg"))}),
            "INVALID_IMAGE_PAYLOAD",
        ),
        (
            json!({"data": b64(&image("edge/face.webp"))}),
            "INVALID_IMAGE_PAYLOAD",
        ),
        (json!({"data": 42}), "INVALID_IMAGE_PAYLOAD"),
        (
            json!({"data": b64(&image("edge/no_face_noise.png"))}),
            "FACE_NOT_DETECTED",
        ),
        (
            json!({"data": b64(&image("edge/tiny_face.jpg"))}),
            "FACE_TOO_SMALL",
        ),
        (
            json!({"data": b64(&image("edge/tiny_image_40x40.png"))}),
            "IMAGE_TOO_SMALL",
        ),
    ];
    for (req, code) in cases {
        let (got, j) = spoofsense(&s, "ss-key", req).await;
        assert_eq!((got, j["error_code"].as_str()), (200, Some(code)), "{j}");
        assert_eq!(j["success"], false);
        assert!(j.get("model_output").is_none(), "{j}");
    }
    // A bad key: the gateway's 403 Forbidden.
    let (code, j) = spoofsense(&s, "wrong", json!({"data": b64(&image(LIVE))})).await;
    assert_eq!((code, j), (403, json!({"message": "Forbidden"})));
    // Over 10,485,760 bytes: 413 with the gateway's text.
    let big = "A".repeat(10_485_800);
    let resp = s
        .client
        .post(format!("{}/antispoofing", s.base))
        .header("x-api-key", "ss-key")
        .json(&json!({"data": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.text().await.unwrap(),
        "HTTP content length exceeded 10485760 bytes."
    );
    // Engine failure: 500 INTERNAL_ERROR, with no internal detail leaked.
    let broken = failing_server().await;
    let (code, j) = spoofsense(&broken, "ss-key", json!({"data": b64(&image(LIVE))})).await;
    assert_eq!(
        (code, j["error_code"].as_str()),
        (500, Some("INTERNAL_ERROR"))
    );
    assert!(!j["message"].as_str().unwrap().contains("simulated"), "{j}");
}

async fn native(key: &str, req: reqwest::RequestBuilder) -> (u16, String) {
    let (code, j) = body(req.bearer_auth(key).send().await.unwrap()).await;
    assert!(!j["request_id"].as_str().unwrap_or("").is_empty(), "{j}");
    (code, j["error"]["code"].as_str().unwrap_or("").to_string())
}

#[test]
fn native_errors_have_real_statuses_and_stable_codes() {
    in_loopback_namespace(|| async {
        let s = start(config()).await;
        let url = format!("{}/v1/liveness", s.base);
        let post = || s.client.post(&url);
        let live = json!({"image": {"base64": b64(&image(LIVE))}});
        let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
            ("wrong-key", post().json(&live), 401, "unauthorized"),
            (
                "native-key",
                post().json(&json!({"image": {"base64": "!!!"}})),
                400,
                "invalid_base64",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"base64": b64(&image("edge/face.bmp"))}})),
                415,
                "unsupported_format",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"base64": b64(&image("edge/html.jpg"))}})),
                415,
                "not_an_image",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"base64": b64(&image("edge/header_only.jpg"))}})),
                422,
                "corrupt_image",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"base64": b64(&image("edge/gray.jpg"))}})),
                422,
                "unsupported_colour",
            ),
            (
                "native-key",
                post()
                    .json(&json!({"image": {"base64": b64(&image("edge/bomb_30000x30000.png"))}})),
                422,
                "image_too_large",
            ),
            ("native-key", post().json(&json!({})), 400, "invalid_json"),
            (
                "native-key",
                post().json(&json!({"image": {}})),
                400,
                "missing_field",
            ),
            (
                "native-key",
                post().json(
                    &json!({"image": {"base64": "aGk=", "url": "https://example.com/a.jpg"}}),
                ),
                400,
                "invalid_parameter",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"url": "http://127.0.0.1:10001/a.jpg"}})),
                400,
                "url_forbidden",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"url": "https://example.com:22/a.jpg"}})),
                400,
                "url_forbidden",
            ),
            (
                "native-key",
                post().json(&json!({"image": {"base64": b64(&image(LIVE))}, "threshold": 1.5})),
                400,
                "invalid_parameter",
            ),
            (
                "native-key",
                post().header("content-type", "text/plain").body("hello"),
                415,
                "unsupported_media_type",
            ),
            (
                "native-key",
                post().multipart(Form::new().text("operating_point", "weak")),
                400,
                "missing_field",
            ),
            (
                "native-key",
                post().multipart(
                    Form::new()
                        .part("image", Part::bytes(image(LIVE)))
                        .text("operating_point", "lax"),
                ),
                400,
                "invalid_parameter",
            ),
        ];
        for (key, req, status, code) in cases {
            assert_eq!(native(key, req).await, (status, code.to_string()), "{code}");
        }
        let broken = failing_server().await;
        let (code, err) = native(
            "native-key",
            broken
                .client
                .post(format!("{}/v1/liveness", broken.base))
                .json(&live),
        )
        .await;
        assert_eq!((code, err.as_str()), (500, "inference_failed"));
    });
}

#[tokio::test]
async fn a_30_mb_body_is_refused_without_being_read() {
    let s = start(config()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Announce 30 MB, send one byte of it, and wait for the answer.
    tcp.write_all(b"POST /v1/liveness HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer native-key\r\nContent-Type: application/json\r\nContent-Length: 30000000\r\n\r\n{").await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("the refusal comes without waiting for the body")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("body_too_large"), "{head}");
}

#[tokio::test]
async fn accura_refuses_files_over_one_megabyte_and_wrong_keys() {
    let s = start(config()).await;
    let url = format!("{}/v2/api/liveness", s.base);
    // face.bmp is 1.4 MB: refused for its size before its format is looked at.
    let big = image("edge/face.bmp");
    assert!(big.len() > 1_000_000);
    let (code, j) = body(
        s.client
            .post(&url)
            .header("Api-Key", "accura-key")
            .multipart(Form::new().part("liveness_image", Part::bytes(big)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((code, j["status"].as_str()), (413, Some("error")), "{j}");
    let (code, j) = body(
        s.client
            .post(&url)
            .header("Api-Key", "nope")
            .multipart(Form::new().part("liveness_image", Part::bytes(image(LIVE))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["error_code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (code, j) = body(
        s.client
            .post(&url)
            .header("Api-Key", "accura-key")
            .multipart(Form::new().text("other", "x"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, j["error_code"].as_str()),
        (400, Some("missing_field"))
    );
}

#[tokio::test]
async fn jcv_validates_the_images_array() {
    let s = start(config()).await;
    let url = format!("{}/v1/jcv/liveness", s.base);
    let data = b64(&image(LIVE));
    for (req, code) in [
        (json!({}), "missing_field"),
        (json!({"images": []}), "missing_field"),
        (
            json!({"images": [{"index": 1, "type": "RGB", "data": data}]}),
            "invalid_parameter",
        ),
        (
            json!({"images": [{"index": 0, "type": "IR", "data": data}]}),
            "invalid_parameter",
        ),
        (
            json!({"images": [{"index": 0, "type": "RGB", "data": ""}]}),
            "missing_field",
        ),
        (
            json!({"images": [{"index": 0, "type": "RGB"}]}),
            "missing_field",
        ),
    ] {
        let (status, j) = body(
            s.client
                .post(&url)
                .header("X-API-Key", "jcv-key")
                .json(&req)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, j["error"]["code"].as_str()),
            (400, Some(code)),
            "{req}"
        );
        assert_eq!(j["status"], "error");
    }
}

#[tokio::test]
async fn saturation_is_refused_quickly_with_retry_after() {
    let mut cfg = config();
    cfg.workers = 1;
    cfg.queue = 0;
    let s = start(cfg).await;
    let big = json!({"image": {"base64": b64(&image("live/deepface_img49.jpg"))}});
    let url = format!("{}/v1/liveness", s.base);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let req = s.client.post(&url).bearer_auth("native-key").json(&big);
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let (code, j) = body(r).await;
                (code, retry, j)
            })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        let (code, retry, j) = t.await.unwrap();
        match code {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(j["error"]["code"], "overloaded");
            }
            other => panic!("unexpected {other}: {j}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
    // The server is still there and answers normally once the burst is over.
    assert_eq!(native_json(&s, LIVE).await.0, 200);
}

#[test]
fn native_image_urls_are_fetched_within_the_deadline() {
    in_loopback_namespace(|| async {
        let (img_base, _) = image_server();
        let mut cfg = config();
        cfg.fetch.timeout = Duration::from_secs(1);
        cfg.fetch.allow = vec!["127.0.0.1/32".parse().unwrap()];
        let s = start(cfg).await;
        let url = format!("{}/v1/liveness", s.base);
        let send = |image_url: String| {
            s.client
                .post(&url)
                .bearer_auth("native-key")
                .json(&json!({"image": {"url": image_url}}))
                .send()
        };
        let (code, j) = body(send(format!("{img_base}/img/{LIVE}")).await.unwrap()).await;
        assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
        let (code, j) = body(send(format!("{img_base}/slow")).await.unwrap()).await;
        assert_eq!(
            (code, j["error"]["code"].as_str()),
            (504, Some("url_timeout")),
            "{j}"
        );
        let (code, j) = body(send(format!("{img_base}/nothing-here")).await.unwrap()).await;
        assert_eq!(
            (code, j["error"]["code"].as_str()),
            (422, Some("url_fetch_failed")),
            "{j}"
        );
    });
}

/// Eight clients with a valid key sending their bodies at a few bytes a second, against
/// one worker and no queue: they hold no inference place, so other clients' requests are
/// all answered, and each slow body is refused with 408 once its rate is checked.
#[tokio::test]
async fn slow_uploads_hold_no_place_and_are_cut_off() {
    let mut cfg = config();
    cfg.workers = 1;
    cfg.queue = 0;
    cfg.limits.body_grace = Duration::from_secs(1);
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let slow: Vec<_> = (0..8).map(|_| slow_upload(&addr, 10)).collect();
    // Meanwhile, other clients are served as usual.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..4 {
        let (code, j) = native_json(&s, LIVE).await;
        assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
    }
    for t in slow {
        let (answer, took) = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(answer.contains("body_too_slow"), "{answer:?}");
        assert!(took < Duration::from_secs(5), "cut off after {took:?}");
    }
}

/// A native request whose body comes a byte every 200 ms, for at most `secs` seconds: the
/// server's answer (if any) and when it came.
fn slow_upload(addr: &str, secs: u64) -> tokio::task::JoinHandle<(String, Duration)> {
    let addr = addr.to_string();
    tokio::spawn(async move {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = "POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer native-key\r\n\
                    Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
        c.write_all(head.as_bytes()).await.unwrap();
        let t0 = std::time::Instant::now();
        let mut answer = Vec::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            if c.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        (String::from_utf8_lossy(&answer).to_string(), t0.elapsed())
    })
}

/// A key with all its in-flight places taken (here by slow uploads) gets 429 with
/// Retry-After, in every dialect's own shape; other keys are served; the key is served
/// again once its requests end.
#[tokio::test]
async fn a_key_over_its_share_gets_429_and_other_keys_are_served() {
    let mut cfg = config();
    cfg.limits.per_key_requests = 2;
    cfg.limits.body_grace = Duration::from_secs(2);
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let slow: Vec<_> = (0..2).map(|_| slow_upload(&addr, 10)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let resp = native_post(&s, LIVE).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let (code, j) = body(resp).await;
    assert_eq!(
        (code, j["error"]["code"].as_str()),
        (429, Some("too_many_requests")),
        "{j}"
    );

    let resp = s
        .client
        .post(format!("{}/antispoofing", s.base))
        .header("x-api-key", "ss-key")
        .json(&json!({"data": b64(&image(LIVE))}))
        .send()
        .await
        .unwrap();
    let (code, j) = body(resp).await;
    assert_eq!(
        (code, j["model_output"]["pred_idx"].as_str()),
        (200, Some("real")),
        "{j}"
    );

    for t in slow {
        let (answer, _) = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    let (code, j) = native_json(&s, LIVE).await;
    assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
}

/// Headers sent a byte at a time do not keep a connection: it is closed once the header
/// deadline passes. Connections beyond the limit are closed at once.
#[tokio::test]
async fn slow_headers_and_surplus_connections_are_closed() {
    let mut cfg = config();
    cfg.connections.header_read_timeout = Duration::from_secs(1);
    cfg.connections.max_connections = 4;
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let t0 = std::time::Instant::now();
    let mut trickle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let closed_after = loop {
        // One header byte every 100 ms, never finishing.
        if trickle.write_all(b"X").await.is_err() {
            break t0.elapsed();
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), trickle.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => break t0.elapsed(),
            Err(_) => assert!(t0.elapsed() < Duration::from_secs(5), "still open"),
        }
    };
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
}

/// Time until the server closes `conn` (reads see the end), sending `ping` every 200 ms
/// meanwhile; panics past 10 s.
async fn closed_within(conn: &mut tokio::net::TcpStream, ping: &[u8]) -> Duration {
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        if !ping.is_empty() && conn.write_all(ping).await.is_err() {
            return t0.elapsed();
        }
        match tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return t0.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => assert!(t0.elapsed() < Duration::from_secs(10), "still open"),
        }
    }
}

/// A connection that sends no byte, or no request (HTTP/2 with pings and no stream), is
/// closed at the header deadline; so is an HTTP/1 keep-alive connection waiting for its
/// next request (hyper's header deadline runs from the end of the last answer).
#[tokio::test]
async fn connections_without_a_request_are_closed() {
    let mut cfg = config();
    cfg.connections.header_read_timeout = Duration::from_secs(1);
    cfg.connections.idle_timeout = Duration::from_secs(2);
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let after = closed_within(&mut silent, b"").await;
    assert!(after >= Duration::from_millis(900), "{after:?}");

    // h2c with prior knowledge: the preface, empty SETTINGS, then PINGs and no stream.
    let mut h2 = tokio::net::TcpStream::connect(&addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let ping = b"\0\0\x08\x06\0\0\0\0\0facelive";
    let after = closed_within(&mut h2, ping).await;
    assert!(after >= Duration::from_millis(900), "{after:?}");

    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let after = closed_within(&mut kept, b"").await;
    assert!(after >= Duration::from_millis(900), "{after:?}");
}

/// At the connection limit, a new client is served: the connection idle the longest is
/// closed to make room. Only when every connection is busy is the new one closed.
#[tokio::test]
async fn at_the_limit_the_oldest_idle_connection_makes_room() {
    let mut cfg = config();
    cfg.connections.max_connections = 4;
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = || async { s.client.get(format!("{}/health", s.base)).send().await };
    assert_eq!(health().await.unwrap().status(), 200);
    let mut buf = [0u8; 16];
    let oldest = tokio::time::timeout(Duration::from_secs(2), idle[0].read(&mut buf)).await;
    assert!(
        matches!(oldest, Ok(Ok(0)) | Ok(Err(_))),
        "the oldest idle is closed"
    );
    let next = tokio::time::timeout(Duration::from_millis(300), idle[1].read(&mut buf)).await;
    assert!(next.is_err(), "the others stay open");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Four uploads in progress: busy, so a fifth connection finds no room.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(
            b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer native-key\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
        )
        .await
        .unwrap();
        busy.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(3), fifth.read_to_end(&mut out))
        .await
        .expect("closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&out));
}

/// Whether `GET /health` on this open connection is answered 200.
async fn health_on(c: &mut tokio::net::TcpStream) -> bool {
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
        .await
        .map_or(0, |r| r.unwrap_or(0));
    String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200")
}

/// Silent connections opened in bulk at the limit make room among themselves: a client's
/// keep-alive connection that already carried a request, idle longer than any of them,
/// still carries its next one.
#[tokio::test]
async fn silent_connections_at_the_limit_do_not_push_out_a_keep_alive_client() {
    let mut cfg = config();
    cfg.connections.max_connections = 8;
    let s = start(cfg).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut keep_alive = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(health_on(&mut keep_alive).await);
    let mut silent = Vec::new();
    for _ in 0..7 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Past a second without a request they count as silent; seven more arrive.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..7 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        health_on(&mut keep_alive).await,
        "the keep-alive connection was closed to make room"
    );
}

/// With a decode budget smaller than one camera frame, concurrent requests and an image
/// many times the budget are still all answered: each waits its turn, none is lost.
#[tokio::test]
async fn a_small_decode_budget_serialises_images_without_losing_any() {
    let mut cfg = config();
    cfg.limits.decode_budget_pixels = 200_000;
    let s = start(cfg).await;
    let url = format!("{}/v1/liveness", s.base);
    let mut tasks = Vec::new();
    for rel in [LIVE, LIVE, SPOOF, "live/deepface_img49.jpg"] {
        let req = s
            .client
            .post(&url)
            .bearer_auth("native-key")
            .json(&json!({"image": {"base64": b64(&image(rel))}}));
        tasks.push(tokio::spawn(async move {
            body(req.send().await.unwrap()).await
        }));
    }
    for t in tasks {
        let (code, j) = t.await.unwrap();
        assert_eq!(code, 200, "{j}");
        assert!(j["live_score"].is_number(), "{j}");
    }
}

/// End to end, inside a namespace with only loopback: image URLs at refused addresses, in
/// every spelling and behind a redirect, are refused by the guard (`url_forbidden`) rather
/// than by a connection that failed (`url_fetch_failed`).
#[test]
fn refused_addresses_are_refused_by_the_guard_in_every_spelling() {
    in_loopback_namespace(|| async {
        let (img_base, _) = image_server();
        let refused = [
            "169.254.169.254",
            "0xa9fea9fe",
            "2852039166",
            "0251.0376.0251.0376",
            "[::ffff:169.254.169.254]",
            "[::169.254.169.254]",
            "[::ffff:0:a9fe:a9fe]",
            "[64:ff9b::a9fe:a9fe]",
            "[64:ff9b:1::a9fe:a9fe]",
            "[2002:a9fe:a9fe::1]",
            "[fec0::1]",
            "[fd00::1]",
            "[::ffff:0:0:7f00:2]",
            "[4000::1]",
            "[1::1]",
            "[::1:0:0:7f00:1]",
            "10.0.0.1",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "224.0.0.1",
        ];
        let loopback = [
            "127.0.0.1",
            "127.1",
            "[::1]",
            "localhost",
            "[::ffff:127.0.0.1]",
        ];
        let strict = start(config()).await;
        let mut cfg = config();
        cfg.fetch.allow = vec!["127.0.0.1/32".parse().unwrap()];
        let origin_allowed = start(cfg).await;
        let ask = |s: &Server, url: String| {
            let req = s
                .client
                .post(format!("{}/v1/liveness", s.base))
                .bearer_auth("native-key")
                .json(&json!({"image": {"url": url}}));
            async move { body(req.send().await.unwrap()).await }
        };
        for host in refused.iter().chain(&loopback) {
            let (code, j) = ask(&strict, format!("http://{host}/latest/meta-data/")).await;
            assert_eq!(
                (code, j["error"]["code"].as_str()),
                (400, Some("url_forbidden")),
                "{host}: {j}"
            );
        }
        for host in refused {
            let url = format!("{img_base}/redirect/http://{host}/latest/meta-data/");
            let (code, j) = ask(&origin_allowed, url).await;
            assert_eq!(
                (code, j["error"]["code"].as_str()),
                (400, Some("url_forbidden")),
                "redirect to {host}: {j}"
            );
        }
        // The allowed origin itself is reached: the refusals above are the guard's.
        let (code, j) = ask(&origin_allowed, format!("{img_base}/img/{LIVE}")).await;
        assert_eq!((code, j["outcome"].as_str()), (200, Some("live")), "{j}");
    });
}

/// A wrong key (or a busy key, or a content type no dialect takes) is decided before the
/// body is read. The server still reads the body, and answers after it: a server that
/// answers and stops reading makes a client still uploading fail on a reset and lose the
/// answer (what a slow phone sending a wrong key would see; reqwest's `IncompleteMessage`
/// under load in CI). Here the client sends its headers, waits, then uploads slowly.
#[tokio::test]
async fn an_early_refusal_still_reads_a_slow_upload_and_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(config()).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // Under every dialect's body limit (Accura's is the smallest).
    let body = format!("{{\"padding\": \"{}\"}}", "A".repeat(1_200_000));
    let cases = [
        (
            "/v1/liveness",
            "Authorization: Bearer wrong",
            "application/json",
            401,
        ),
        (
            "/v1/quality",
            "Authorization: Bearer wrong",
            "application/json",
            401,
        ),
        ("/antispoofing", "x-api-key: wrong", "application/json", 403),
        (
            "/v1/jcv/liveness",
            "x-api-key: wrong",
            "application/json",
            401,
        ),
        (
            "/v2/api/liveness",
            "Api-Key: wrong",
            "application/json",
            401,
        ),
        (
            "/v1.0/appkeys/app1/spoofing",
            "Authorization: wrong",
            "application/json",
            200,
        ),
        (
            "/v1/liveness",
            "Authorization: Bearer native-key",
            "text/plain",
            415,
        ),
    ];
    for (path, auth, ctype, status) in cases {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Type: {ctype}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for chunk in body.as_bytes().chunks(150_000) {
            conn.write_all(chunk)
                .await
                .unwrap_or_else(|e| panic!("{path} {ctype}: upload cut off: {e}"));
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)
            .await
            .unwrap_or_else(|e| panic!("{path} {ctype}: reset instead of an answer: {e}"));
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{path} {ctype}: {}",
            &text[..text.len().min(200)]
        );
    }
}

/// A client's X-Request-Id is answered back only when it is short and of safe characters;
/// a long, repeated or odd one is replaced by a generated id, in the header and the body.
#[tokio::test]
async fn only_a_short_safe_request_id_is_kept() {
    let s = start(config()).await;
    let ask = |ids: Vec<String>| {
        let mut req = s
            .client
            .post(format!("{}/v1/liveness", s.base))
            .bearer_auth("native-key")
            .json(&json!({}));
        for id in ids {
            req = req.header("x-request-id", id);
        }
        async move {
            let r = req.send().await.unwrap();
            let header = r.headers()["x-request-id"].to_str().unwrap().to_string();
            let j: Value = r.json().await.unwrap();
            (
                header,
                j["request_id"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let kept = "trace-42.a:b_c-0";
    assert_eq!(ask(vec![kept.into()]).await, (kept.into(), kept.into()));
    for ids in [
        vec!["x".repeat(60_000)],
        vec!["x".repeat(129)],
        vec!["spaces are not safe".into()],
        vec!["a\"b".into()],
        vec!["one".into(), "two".into()],
    ] {
        let (header, body) = ask(ids.clone()).await;
        assert_eq!(header.len(), 36, "{:.40?}: {header}", ids);
        assert!(uuid_like(&header), "{header}");
        assert_eq!(body, header);
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// No answer may be sniffed into another type or framed by another site; the capture page
/// may be framed by its own origin only.
#[tokio::test]
async fn every_answer_forbids_sniffing_and_framing() {
    let s = start(config()).await;
    for (path, frame) in [
        ("/health", "DENY"),
        ("/info", "DENY"),
        ("/openapi.json", "DENY"),
        ("/no/such/route", "DENY"),
        ("/capture", "SAMEORIGIN"),
    ] {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["x-frame-options"], frame, "{path}");
    }
    let r = s
        .client
        .post(format!("{}/v1/liveness", s.base))
        .bearer_auth("wrong-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

/// Sends `request` as is on a new connection and returns what comes back until the
/// connection closes, the answer's headers are complete, or 5 s pass.
async fn raw(s: &Server, request: &[u8]) -> String {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    // The rest of a short answer (its body) if it comes at once.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A chunked body whose chunk size is not a number is a malformed request (400), not an
/// oversized one.
#[tokio::test]
async fn a_malformed_chunked_body_is_a_bad_request() {
    let s = start(config()).await;
    let answer = raw(
        &s,
        b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer native-key\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\n{\"im\r\nzz\r\nnot a chunk\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_parameter"), "{answer}");
}

/// A client that waits for `100 Continue` before its body is refused with the final answer
/// when its key is wrong: it is never invited to upload.
#[tokio::test]
async fn expect_continue_gets_the_refusal_not_an_invitation() {
    let s = start(config()).await;
    let head = |key: &str| {
        format!(
            "POST /v1/liveness HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 50000\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
    };
    let answer = raw(&s, head("wrong").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // With the right key the upload is invited (and then cut short here).
    let answer = raw(&s, head("native-key").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 100"), "{answer}");
}

//! JCV Liveness's documented clients against facelive, byte for byte. JCV ships no SDK for
//! this API; its "Request and Response" page gives two ways to make `images[i].data`:
//! Python's `base64.b64encode(...).decode("utf-8")` (one line), posted here as the
//! `requests` library posts `json=` (json.dumps: ", " and ": " separators), and the shell's
//! `base64 file_path` (GNU coreutils: 76-column lines ended by `\n`), put into JSON by `jq
//! --arg` (newlines escaped as `\n`, "/" left alone) and posted by curl. Each answer goes
//! through what a JCV client reads: `score` against 0.5 and `position`, or the failure.
//! Verdicts equal `facelive check` at JCV's 0.5.

mod common;

use common::*;
use facelive_pipeline::{BBox, DecisionRule, Outcome};
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
enum Client {
    /// Python `requests.post(url, json=body, headers={"X-API-Key": key})`.
    PythonRequests,
    /// `curl -H "api-key: $KEY" -H "Content-Type: application/json" -d "$(jq -n ...)"`.
    ShellCurl,
}

const CLIENTS: [Client; 2] = [Client::PythonRequests, Client::ShellCurl];

/// Where a client ends up.
#[derive(Debug, PartialEq)]
enum Ends {
    /// `status: "ok"`: the score (as sent), `score >= 0.5`, and `position` as
    /// (left, top, width, height).
    Judged(f32, bool, [i64; 4]),
    /// `status: "retry"` and its reason.
    Retry(String),
    /// Any other status: the HTTP status and `error.code`.
    Error(u16, String),
}

fn coreutils_base64(bytes: &[u8]) -> String {
    let plain = b64(bytes);
    let lines: Vec<&str> = plain
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    // `$(...)` drops the last newline; jq escapes the others.
    lines.join("\\n")
}

fn request(client: Client, key: &str, image: &[u8]) -> (String, Vec<u8>) {
    let (body, head) = match client {
        Client::PythonRequests => {
            let body = format!(
                "{{\"images\": [{{\"index\": 0, \"type\": \"RGB\", \"data\": \"{}\"}}]}}",
                b64(image)
            );
            let head = format!(
                "POST /v1/jcv/liveness HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 User-Agent: python-requests/2.31.0\r\nAccept-Encoding: gzip, deflate\r\n\
                 Accept: */*\r\nConnection: close\r\nX-API-Key: {key}\r\n\
                 Content-Length: {}\r\nContent-Type: application/json\r\n\r\n",
                body.len()
            );
            (body, head)
        }
        Client::ShellCurl => {
            // jq's output: pretty-printed, two-space indent, trailing newline.
            let body = format!(
                "{{\n  \"images\": [\n    {{\n      \"index\": 0,\n      \"type\": \"RGB\",\n      \
                 \"data\": \"{}\"\n    }}\n  ],\n  \"autoRotate\": true\n}}\n",
                coreutils_base64(image)
            );
            let head = format!(
                "POST /v1/jcv/liveness HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\n\
                 Accept: */*\r\napi-key: {key}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            (body, head)
        }
    };
    (head, body.into_bytes())
}

fn parse(status: u16, body: &[u8]) -> Ends {
    let j: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status != 200 {
        let code = j["error"]["code"].as_str().unwrap_or("(no JSON)");
        return Ends::Error(status, code.to_string());
    }
    match j["status"].as_str() {
        Some("ok") => {
            let score = j["score"].as_f64().unwrap() as f32;
            let p = &j["position"];
            let at = |k: &str| p[k].as_i64().unwrap();
            let position = [at("left"), at("top"), at("width"), at("height")];
            Ends::Judged(score, score >= 0.5, position)
        }
        Some("retry") => Ends::Retry(j["retry_reason"].as_str().unwrap().to_string()),
        other => panic!("status {other:?} in a 200"),
    }
}

/// The face box as JCV documents `position`: integer pixels inside the image.
fn expected_position(b: &BBox, width: u32, height: u32) -> [i64; 4] {
    let edge = |v: f32, max: u32| (v.round() as i64).clamp(0, max as i64);
    let (l, t) = (edge(b.x, width), edge(b.y, height));
    let (r, btm) = (edge(b.x + b.width, width), edge(b.y + b.height, height));
    [l, t, r - l, btm - t]
}

#[tokio::test]
async fn documented_clients_read_what_check_decides() {
    let s = start(config()).await;
    // A tight crop (the detector's box reaches past the image edge there), and a GIF,
    // whose first frame JCV judges.
    let tight = "live/crop_neonipun_185.png";
    for client in CLIENTS {
        for rel in [LIVE, SPOOF, MIDDLING, tight, "edge/face.gif"] {
            let want = reference(rel, DecisionRule::Threshold(0.5));
            let face = want.face.as_ref().unwrap();
            let position = expected_position(&face.bbox, want.image.width, want.image.height);
            let (head, body) = request(client, "jcv-key", &image(rel));
            let (status, answer) = raw_exchange(&s, &head, &body).await;
            let got = parse(status, &answer);
            let score = want.live_score.unwrap();
            let live = want.outcome == Outcome::Live;
            assert_eq!(got, Ends::Judged(score, live, position), "{client:?} {rel}");
            assert!(position.iter().all(|v| *v >= 0), "{rel}: {position:?}");
            assert!(
                position[0] + position[2] <= want.image.width as i64,
                "{rel}"
            );
            assert!(
                position[1] + position[3] <= want.image.height as i64,
                "{rel}"
            );
        }
    }
}

#[tokio::test]
async fn documented_clients_end_where_jcvs_pages_say() {
    let s = start(config()).await;
    for client in CLIENTS {
        let cases: [(&str, &str, Vec<u8>, Ends); 6] = [
            // The pages name a "face not found" error.
            (
                "no face",
                "jcv-key",
                image("edge/no_face_noise.png"),
                Ends::Error(422, "face_not_found".into()),
            ),
            // A 55 px face: inside JCV's 32 px minimum, under facelive's face-size check.
            (
                "tiny face",
                "jcv-key",
                image("edge/tiny_face.jpg"),
                Ends::Retry("face_size".into()),
            ),
            // WebP is not a JCV format (GIF is: judged in the test above).
            (
                "webp",
                "jcv-key",
                image("edge/face.webp"),
                Ends::Error(415, "unsupported_format".into()),
            ),
            (
                "bad input",
                "jcv-key",
                b"this is not an image".to_vec(),
                Ends::Error(415, "not_an_image".into()),
            ),
            // "Under about 4 MB".
            (
                "oversized",
                "jcv-key",
                vec![0xFF; 4_000_001],
                Ends::Error(413, "file_too_large".into()),
            ),
            (
                "bad key",
                "wrong",
                image(LIVE),
                Ends::Error(401, "unauthorized".into()),
            ),
        ];
        for (case, key, img, want) in cases {
            let (head, body) = request(client, key, &img);
            let (status, answer) = raw_exchange(&s, &head, &body).await;
            let got = parse(status, &answer);
            assert_eq!(got, want, "{client:?} {case}");
        }
    }
}

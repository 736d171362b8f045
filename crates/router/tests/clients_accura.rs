//! Accura Scan's documented clients against facelive, byte for byte. Accura's "Accura Face
//! Liveness" page publishes one client: a Postman collection (`Api-Key` header, form-data
//! file field `liveness_image`), posted here as Postman's runtime writes it. Beside it, the
//! browser form some integrations send: `fetch` with `JSON.stringify({liveness_image:
//! canvas.toDataURL("image/jpeg")})`. Each answer goes through what such a client reads:
//! `liveness_score` (percent) against the page's preferred 55%, or the failure. Verdicts
//! equal `facelive check` at 0.55.

mod common;

use common::*;
use facelive_pipeline::{DecisionRule, Outcome};
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
enum Client {
    Postman,
    BrowserFetch,
}

const CLIENTS: [Client; 2] = [Client::Postman, Client::BrowserFetch];

#[derive(Debug, PartialEq)]
enum Ends {
    /// `status: "success"` with a score: the percentage and `score > 55`.
    Scored(f32, bool),
    /// `status: "success"` without a score: `liveness_status` "retry" and the reason.
    Retry(String),
    /// Anything else: the HTTP status and `error_code`.
    Error(u16, String),
}

fn request(client: Client, key: &str, image: &[u8]) -> (String, Vec<u8>) {
    match client {
        Client::Postman => {
            let boundary = "--------------------------482913507652184309275614";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"liveness_image\"; \
                 filename=\"selfie.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(image);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let head = format!(
                "POST /v2/api/liveness HTTP/1.1\r\nApi-Key: {key}\r\n\
                 User-Agent: PostmanRuntime/7.39.0\r\nAccept: */*\r\nCache-Control: no-cache\r\n\
                 Postman-Token: 0b6f4d52-3c1e-4d8a-9a7e-2f5b8c1d0e94\r\nHost: 127.0.0.1\r\n\
                 Accept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\
                 Content-Type: multipart/form-data; boundary={boundary}\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            (head, body)
        }
        Client::BrowserFetch => {
            // JSON.stringify leaves "/" alone; the data URL says JPEG whatever the bytes are,
            // as toDataURL("image/jpeg") output re-posted from another image would.
            let body = format!(
                "{{\"liveness_image\":\"data:image/jpeg;base64,{}\"}}",
                b64(image)
            )
            .into_bytes();
            let head = format!(
                "POST /v2/api/liveness HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                 Content-Length: {}\r\nsec-ch-ua-platform: \"Linux\"\r\napi-key: {key}\r\n\
                 User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36\r\n\
                 content-type: application/json\r\nAccept: */*\r\nOrigin: http://127.0.0.1\r\n\
                 Sec-Fetch-Mode: cors\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n",
                body.len()
            );
            (head, body)
        }
    }
}

fn parse(status: u16, body: &[u8]) -> Ends {
    let j: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status != 200 || j["status"] != "success" {
        let code = j["error_code"].as_str().unwrap_or("(no JSON)");
        return Ends::Error(status, code.to_string());
    }
    match j["liveness_score"].as_f64() {
        Some(p) => Ends::Scored(p as f32, p > 55.0),
        None => Ends::Retry(j["retry_reason"].as_str().unwrap().to_string()),
    }
}

#[tokio::test]
async fn documented_clients_read_what_check_decides() {
    let s = start(config()).await;
    for client in CLIENTS {
        for rel in [LIVE, SPOOF, MIDDLING] {
            let want = reference(rel, DecisionRule::Threshold(0.55));
            let (head, body) = request(client, "accura-key", &image(rel));
            let (status, answer) = raw_exchange(&s, &head, &body).await;
            let Ends::Scored(percent, live) = parse(status, &answer) else {
                panic!("{client:?} {rel}: {}", String::from_utf8_lossy(&answer));
            };
            let score = want.live_score.unwrap();
            // Percent with two decimals.
            assert!(
                (percent - score * 100.0).abs() <= 0.005 + 1e-4,
                "{client:?} {rel}"
            );
            assert_eq!(live, want.outcome == Outcome::Live, "{client:?} {rel}");
        }
    }
}

#[tokio::test]
async fn documented_clients_end_where_the_page_says() {
    let s = start(config()).await;
    for client in CLIENTS {
        let cases: [(&str, &str, Vec<u8>, Ends); 5] = [
            // Accura publishes no failure answers: facelive's retry and error shapes.
            (
                "no face",
                "accura-key",
                image("edge/no_face_noise.png"),
                Ends::Retry("no_face".into()),
            ),
            (
                "tiny face",
                "accura-key",
                image("edge/tiny_face.jpg"),
                Ends::Retry("face_size".into()),
            ),
            (
                "bad input",
                "accura-key",
                b"this is not an image".to_vec(),
                Ends::Error(415, "not_an_image".into()),
            ),
            // "Max file upload size is 1 MB."
            (
                "oversized",
                "accura-key",
                vec![0xFF; 1_000_001],
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
            assert_eq!(parse(status, &answer), want, "{client:?} {case}");
        }
    }
}

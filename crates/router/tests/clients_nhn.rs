//! NHN Cloud Face Liveness's documented clients against facelive, byte for byte. NHN ships
//! no SDK for this API; its API guide's clients are curl requests, JSON with
//! `image.bytes` and multipart with `imageFile`. Each request is written as curl writes
//! it; each answer goes through the logic NHN's guide prescribes (every API request answers
//! 200, the outcome in `header.isSuccessful` / `resultCode`), as a client whose HTTP
//! library throws on any other status must read it. Verdicts equal `facelive check` at the
//! requested `spoofingCondition`.

mod common;

use common::*;
use facelive_pipeline::{DecisionRule, OperatingPoint, Outcome};
use serde_json::Value;

#[derive(Clone, Copy, Debug)]
enum Body {
    Json,
    Multipart,
}

/// Where the client ends up.
#[derive(Debug, PartialEq)]
enum Ends {
    /// `faceDetails[0].spoofing`, or no face analysed.
    Spoofing(Option<bool>),
    /// `isSuccessful: false` and its resultCode.
    Failed(i64),
    /// A status other than 200: the HTTP library throws before the body is read.
    Threw(u16),
}

/// curl's request: `-H "Authorization: ..."`, and `-d` JSON or `-F` form data.
fn request(kind: Body, secret: &str, image: &[u8], condition: &str) -> (String, Vec<u8>) {
    let (ctype, body) = match kind {
        Body::Json => (
            "application/json".to_string(),
            format!(
                "{{\"image\":{{\"bytes\":\"{}\"}},\"spoofingCondition\":\"{condition}\"}}",
                b64(image)
            )
            .into_bytes(),
        ),
        Body::Multipart => {
            let boundary = "------------------------d74496d66958873e";
            let mut b = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"imageFile\"; \
                 filename=\"image.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .into_bytes();
            b.extend_from_slice(image);
            b.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Disposition: form-data; \
                     name=\"spoofingCondition\"\r\n\r\n{condition}\r\n--{boundary}--\r\n"
                )
                .as_bytes(),
            );
            (format!("multipart/form-data; boundary={boundary}"), b)
        }
    };
    let head = format!(
        "POST /v1.0/appkeys/app1/spoofing HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         User-Agent: curl/7.88.1\r\nAccept: */*\r\nAuthorization: {secret}\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    (head, body)
}

fn parse(status: u16, body: &[u8]) -> Ends {
    if status != 200 {
        return Ends::Threw(status);
    }
    let j: Value = serde_json::from_slice(body).unwrap();
    if j["header"]["isSuccessful"] != true {
        return Ends::Failed(j["header"]["resultCode"].as_i64().unwrap());
    }
    Ends::Spoofing(j["data"]["faceDetails"][0]["spoofing"].as_bool())
}

#[tokio::test]
async fn curl_requests_end_where_nhns_guide_says() {
    let s = start(config()).await;
    for kind in [Body::Json, Body::Multipart] {
        for (rel, condition, point) in [
            (LIVE, "balanced", OperatingPoint::Balanced),
            (SPOOF, "balanced", OperatingPoint::Balanced),
            (MIDDLING, "strict", OperatingPoint::Strict),
        ] {
            let want = reference(rel, DecisionRule::Point(point));
            let (head, body) = request(kind, "secret1", &image(rel), condition);
            let (status, answer) = raw_exchange(&s, &head, &body).await;
            let spoofing = want.outcome != Outcome::Live;
            assert_eq!(
                parse(status, &answer),
                Ends::Spoofing(Some(spoofing)),
                "{kind:?} {rel} {condition}"
            );
        }
        let cases: [(&str, &str, Vec<u8>, Ends); 6] = [
            // No face, and a face under the guide's 60x60 px: success, nothing analysed.
            (
                "no face",
                "secret1",
                image("edge/no_face_blank.png"),
                Ends::Spoofing(None),
            ),
            (
                "tiny face",
                "secret1",
                image("edge/tiny_face.jpg"),
                Ends::Spoofing(None),
            ),
            // Under 80x80 px, or not an image: InvalidImageParameter / InvalidImageFormat.
            (
                "tiny image",
                "secret1",
                image("edge/tiny_image_40x40.png"),
                Ends::Failed(-45030),
            ),
            (
                "bad input",
                "secret1",
                b"not an image".to_vec(),
                Ends::Failed(-45040),
            ),
            // Over 3,000,000 bytes: ImageTooLarge.
            (
                "oversized",
                "secret1",
                vec![0xFF; 3_000_001],
                Ends::Failed(-45020),
            ),
            ("bad key", "wrong", image(LIVE), Ends::Failed(-41005)),
        ];
        for (case, secret, img, want) in cases {
            let (head, body) = request(kind, secret, &img, "balanced");
            let (status, answer) = raw_exchange(&s, &head, &body).await;
            assert_eq!(parse(status, &answer), want, "{kind:?} {case}");
        }
    }
}

//! Liveness with verify over HTTP, against the real server: `/v1/verify` (JSON and
//! multipart, images and templates), `/v1/templates`, their errors, and a capture session
//! bound to a reference whose answer carries an attestation the published keys verify.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{b64, body, config, image, pipeline, start, verify_image, Server};
use facelive_pipeline::{CheckOptions, MatchRule, Reference};
use ring::signature::{UnparsedPublicKey, ED25519};
use serde_json::{json, Value};

const SELFIE: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_152.jpg";
const SAME: &str = "imironica__db_ClientRaw_0001_0001_00_00_01_264.jpg";
/// A print of the same person (an attack pair's selfie).
const PRINT: &str = "imironica__db_ImposterRaw_0001_0001_00_01_02_134.jpg";
const OTHER: &str = "ageitgey__examples_knn_examples_test_johnsnow_test1.jpg";

async fn post(s: &Server, path: &str, body_json: Value) -> (u16, Value) {
    let resp = s
        .client
        .post(format!("{}{path}", s.base))
        .bearer_auth("native-key")
        .json(&body_json)
        .send()
        .await
        .unwrap();
    body(resp).await
}

fn pair(selfie: &str, reference: &str) -> Value {
    json!({"image": {"base64": b64(&verify_image(selfie))},
           "reference": {"base64": b64(&verify_image(reference))}})
}

/// The three outcomes of a judged pair, each as the pipeline decides it, with both faces'
/// boxes and the similarity the pipeline computes for the same pair.
#[tokio::test]
async fn verify_answers_verified_attack_and_not_same_person() {
    let s = start(config()).await;
    for (selfie, reference, outcome) in [
        (SELFIE, SAME, "verified"),
        (PRINT, SELFIE, "attack"),
        (SELFIE, OTHER, "not_same_person"),
    ] {
        let (status, v) = post(&s, "/v1/verify", pair(selfie, reference)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["outcome"], outcome, "{selfie} vs {reference}: {v}");
        assert_eq!(v["verified"], outcome == "verified");
        let want = pipeline()
            .verify(
                &verify_image(selfie),
                Reference::Image(&verify_image(reference)),
                &CheckOptions::default(),
                MatchRule::default(),
            )
            .unwrap();
        let got = v["similarity"].as_f64().unwrap();
        assert!(
            (got - want.similarity.unwrap() as f64).abs() < 1e-6,
            "{got} vs {want:?}"
        );
        assert_eq!(
            v["match_threshold"].as_f64().unwrap() as f32,
            want.match_threshold
        );
        assert!(v["liveness"]["face"]["box"]["width"].as_f64().unwrap() > 50.0);
        assert!(v["reference"]["face"]["box"]["width"].as_f64().unwrap() > 50.0);
        assert!(v.get("embedding").is_none() && v["reference"].get("embedding").is_none());
    }
}

/// A template made from the reference photo gives the same similarity as the photo; the
/// multipart form (two files, or a file and `reference_template`) answers as JSON does.
#[tokio::test]
async fn a_template_stands_for_its_photo_in_json_and_multipart() {
    let s = start(config()).await;
    let (status, t) = post(
        &s,
        "/v1/templates",
        json!({"image": {"base64": b64(&verify_image(SAME))}}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let template = t["template"].as_str().unwrap().to_string();
    assert!(
        template.starts_with("flt1.") && t["embedder"] == "mobilefacenet",
        "{t}"
    );
    let (_, by_photo) = post(&s, "/v1/verify", pair(SELFIE, SAME)).await;
    let by_template = json!({"image": {"base64": b64(&verify_image(SELFIE))},
                             "reference": {"template": template}});
    let (status, v) = post(&s, "/v1/verify", by_template).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outcome"], "verified");
    assert_eq!(v["similarity"], by_photo["similarity"]);
    assert!(
        v["reference"].is_null(),
        "a template has no photo to describe: {v}"
    );

    let part = |bytes: Vec<u8>| reqwest::multipart::Part::bytes(bytes).file_name("x.jpg");
    let forms = [
        reqwest::multipart::Form::new()
            .part("image", part(verify_image(SELFIE)))
            .part("reference", part(verify_image(SAME))),
        reqwest::multipart::Form::new()
            .part("image", part(verify_image(SELFIE)))
            .text("reference_template", template.clone()),
    ];
    for form in forms {
        let resp = s
            .client
            .post(format!("{}/v1/verify", s.base))
            .bearer_auth("native-key")
            .multipart(form)
            .send()
            .await
            .unwrap();
        let (status, v) = body(resp).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["similarity"], by_photo["similarity"], "{v}");
    }
}

/// Every way a verify can go wrong has its own answer: no face in the reference (retry,
/// naming the reference), a damaged template, another server's template, another model's
/// template, a reference that is not an image, bad base64, a missing reference, both
/// kinds of reference at once, and a template asked of a photo with no face.
#[tokio::test]
async fn each_mistake_gets_its_own_answer() {
    let s = start(config()).await;
    let selfie = b64(&verify_image(SELFIE));
    let blank = b64(&image("edge/no_face_blank.png"));
    let (status, v) = post(
        &s,
        "/v1/verify",
        json!({"image": {"base64": selfie}, "reference": {"base64": blank}}),
    )
    .await;
    assert_eq!((status, &v["outcome"]), (200, &json!("retry")), "{v}");
    assert_eq!(
        (&v["retry_image"], &v["retry_reason"]),
        (&json!("reference"), &json!("no_face"))
    );

    let (_, t) = post(
        &s,
        "/v1/templates",
        json!({"image": {"base64": b64(&verify_image(SAME))}}),
    )
    .await;
    let template = t["template"].as_str().unwrap().to_string();
    let mut damaged = template.clone().into_bytes();
    let i = damaged.len() - 5;
    damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
    let other_server = {
        let mut cfg = config();
        cfg.sessions.template_secret = Some("another secret".to_string().into());
        let other = start(cfg).await;
        let (_, t) = post(
            &other,
            "/v1/templates",
            json!({"image": {"base64": b64(&verify_image(SAME))}}),
        )
        .await;
        t["template"].as_str().unwrap().to_string()
    };
    let other_model = {
        let sealer = facelive_router::templates::Templates::new(None);
        let e = facelive_pipeline::Embedding::normalised(vec![1.0; 128]).unwrap();
        sealer.seal(&e, &"ab".repeat(32))
    };
    let cases = [
        (
            json!({"template": String::from_utf8(damaged).unwrap()}),
            422,
            "invalid_template",
        ),
        (json!({"template": other_server}), 422, "invalid_template"),
        (
            json!({"template": other_model}),
            422,
            "template_model_mismatch",
        ),
        (
            json!({"base64": b64(b"not an image at all")}),
            422,
            "invalid_reference",
        ),
        (json!({"base64": "%%% not base64"}), 400, "invalid_base64"),
        (json!({}), 400, "missing_field"),
        (
            json!({"base64": selfie, "template": template}),
            400,
            "invalid_parameter",
        ),
    ];
    for (reference, want_status, code) in cases {
        let (status, v) = post(
            &s,
            "/v1/verify",
            json!({"image": {"base64": selfie}, "reference": reference}),
        )
        .await;
        assert_eq!(
            (status, v["error"]["code"].as_str().unwrap()),
            (want_status, code),
            "{v}"
        );
    }
    let (status, v) = post(&s, "/v1/templates", json!({"image": {"base64": blank}})).await;
    assert_eq!(
        (status, v["error"]["code"].as_str().unwrap()),
        (422, "reference_unusable"),
        "{v}"
    );
    let (status, _) = post(&s, "/v1/verify", json!({"image": {"base64": selfie}})).await;
    assert_eq!(status, 400, "no reference at all");
}

/// The server's `/.well-known/jwks.json`, fetched without a key (it is public).
async fn fetch_jwks(s: &Server) -> Value {
    let resp = s
        .client
        .get(format!("{}/.well-known/jwks.json", s.base))
        .send()
        .await
        .unwrap();
    let (status, v) = body(resp).await;
    assert_eq!(status, 200);
    v
}

/// The JWS's signature checked with the server's JWKS: its claims, or `None` when it
/// does not verify.
fn verified_claims(jws: &str, jwks: &Value) -> Option<Value> {
    let key = &jwks["keys"][0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str()?).ok()?;
    let (input, sig) = jws.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    UnparsedPublicKey::new(&ED25519, &public)
        .verify(input.as_bytes(), &sig)
        .ok()?;
    let (header, payload) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    assert_eq!(
        (&header["alg"], &header["kid"]),
        (&json!("EdDSA"), &key["kid"])
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A session made with a nonce and a reference verifies its one selfie against that
/// reference on whatever replica gets it (here: another server sharing the secrets), and
/// its answer's attestation verifies with the JWKS published at `/.well-known/jwks.json`:
/// the nonce, the outcome, the similarity and the sha256 of the judged bytes are in it; a
/// byte of the payload changed, or another server's key, and it no longer verifies.
#[tokio::test]
async fn a_bound_session_answers_with_an_attestation_the_jwks_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("attest.pem");
    let doc =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let text = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(doc.as_ref())
    );
    std::fs::write(&pem, text).unwrap();
    let shared = || {
        let mut cfg = config();
        cfg.sessions.secret = Some("session secret".to_string().into());
        cfg.sessions.template_secret = Some("template secret".to_string().into());
        cfg.sessions.attestation_key = Some(pem.clone());
        cfg
    };
    let (a, b) = (start(shared()).await, start(shared()).await);
    let session = json!({"nonce": "order-4711", "reference": {"base64": b64(&verify_image(SAME))}});
    let (status, issued) = post(&a, "/v1/sessions", session).await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap();
    let selfie = verify_image(SELFIE);
    let resp = b
        .client
        .post(format!("{}/v1/liveness", b.base))
        .bearer_auth(token)
        .json(&json!({"image": {"base64": b64(&selfie)}}))
        .send()
        .await
        .unwrap();
    let (status, v) = body(resp).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["outcome"], &v["verify"]["outcome"]),
        (&json!("live"), &json!("verified")),
        "{v}"
    );
    let jwks = fetch_jwks(&a).await;
    let jws = v["attestation"].as_str().unwrap();
    let claims = verified_claims(jws, &jwks).expect("the attestation verifies with the JWKS");
    use sha2::Digest;
    let image_sha: String = sha2::Sha256::digest(&selfie)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(claims["nonce"], "order-4711");
    assert_eq!(claims["sid"], issued["session_id"]);
    assert_eq!(claims["image_sha256"], image_sha);
    assert_eq!(
        (&claims["outcome"], &claims["verified"]),
        (&json!("verified"), &json!(true))
    );
    assert_eq!(claims["similarity"], v["verify"]["similarity"]);
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());

    // One byte of the payload changed: the signature no longer holds.
    let (header, rest) = jws.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut p = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let at = p.windows(5).position(|w| w == b"order").unwrap();
    p[at] = b'O';
    let forged = format!("{header}.{}.{sig}", URL_SAFE_NO_PAD.encode(p));
    assert!(verified_claims(&forged, &jwks).is_none());
    // Another server's key (generated at its start) does not verify it either.
    let other = start(config()).await;
    let other_jwks = fetch_jwks(&other).await;
    assert!(verified_claims(jws, &other_jwks).is_none());

    // The token is spent, and a page's token chooses no reference of its own.
    let again = b
        .client
        .post(format!("{}/v1/liveness", b.base))
        .bearer_auth(token)
        .json(&json!({"image": {"base64": b64(&selfie)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(again).await.1["error"]["code"], "session_used");
    let (_, fresh) = post(&a, "/v1/sessions", json!({})).await;
    let resp = a
        .client
        .post(format!("{}/v1/verify", a.base))
        .bearer_auth(fresh["token"].as_str().unwrap())
        .json(&pair(SELFIE, SAME))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

/// A plain session (no body) still gets its attestation, without a match; a session asked
/// with a reference that has no face is refused at once.
#[tokio::test]
async fn a_plain_session_is_attested_and_a_faceless_reference_refused() {
    let s = start(config()).await;
    let resp = s
        .client
        .post(format!("{}/v1/sessions", s.base))
        .bearer_auth("native-key")
        .send()
        .await
        .unwrap();
    let (status, issued) = body(resp).await;
    assert_eq!(status, 201, "{issued}");
    let resp = s
        .client
        .post(format!("{}/v1/liveness", s.base))
        .bearer_auth(issued["token"].as_str().unwrap())
        .json(&json!({"image": {"base64": b64(&verify_image(SELFIE))}}))
        .send()
        .await
        .unwrap();
    let (_, v) = body(resp).await;
    let jwks = fetch_jwks(&s).await;
    let claims = verified_claims(v["attestation"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(
        (&claims["outcome"], &claims["verified"], &claims["nonce"]),
        (&json!("live"), &Value::Null, &Value::Null)
    );
    assert!(v.get("verify").is_none(), "{v}");
    let (status, e) = post(
        &s,
        "/v1/sessions",
        json!({"reference": {"base64": b64(&image("edge/no_face_blank.png"))}}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str().unwrap()),
        (422, "reference_unusable")
    );
}

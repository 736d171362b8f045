//! Getting the image out of a request: bodies read under a limit, base64, multipart files,
//! and URLs fetched under the SSRF rules of `fetch`.

pub mod fetch;

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use base64::Engine;
use futures_util::StreamExt;
use std::time::Duration;

use crate::config::Limits;
use crate::error::ApiError;

/// A request body by kind, chosen from its content type.
pub enum Payload {
    Json(Bytes),
    Multipart(Multipart),
}

/// Refuses a body whose declared length is over `limit` before reading any of it, then
/// reads JSON whole (still under `limit`) or hands multipart over for streaming, both at
/// no less than the minimum rate of `limits` (see [`rate_guarded`]).
fn declared_length(req: &Request) -> Option<usize> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// `e`, once the request's body has been read and dropped (up to `limit`, under the
/// slow-body rules): for answers decided before the body is read (a wrong key, a busy key,
/// a wrong content type). hyper stops reading a body the handler dropped, and a client
/// still uploading then fails on a reset and never sees the answer. A body declared over
/// `limit` is not read: its 413 closes the connection, as it must. Nor is the body of a
/// client waiting for `100 Continue`: it has sent none yet, and reading would invite it
/// (hyper answers 100 when the body is first read), after a refusal.
pub async fn refuse_unread(req: Request, limit: usize, limits: &Limits, e: ApiError) -> ApiError {
    let waits_to_send = req
        .headers()
        .get(axum::http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_to_send || declared_length(&req).is_some_and(|n| n > limit) {
        return e;
    }
    let body = rate_guarded(req.into_body(), limits.min_body_rate, limits.body_grace);
    let mut stream = body.into_data_stream();
    let mut seen = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
    e
}

pub async fn payload(req: Request, limit: usize, limits: &Limits) -> Result<Payload, ApiError> {
    if declared_length(&req).is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let req = req.map(|b| rate_guarded(b, limits.min_body_rate, limits.body_grace));
    if ctype.starts_with("application/json") {
        Ok(Payload::Json(read_limited(req.into_body(), limit).await?))
    } else if ctype.starts_with("multipart/form-data") {
        Multipart::from_request(req, &())
            .await
            .map(Payload::Multipart)
            .map_err(|e| ApiError::InvalidParam(e.body_text()))
    } else {
        let e = ApiError::UnsupportedMediaType(ctype);
        Err(refuse_unread(req, limit, limits, e).await)
    }
}

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        slow_body(&e).unwrap_or_else(|| match over_limit(&e) {
            true => ApiError::BodyTooLarge { limit },
            // Malformed chunked encoding, or the client went away mid-body.
            false => ApiError::InvalidParam("the request body could not be read".into()),
        })
    })
}

/// Whether `e` (or what it wraps) is the body running past its length limit.
fn over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The error a too-slow body ends with: found again in whatever error wraps it.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {min_rate} bytes/s")]
struct TooSlow {
    min_rate: u64,
}

/// `ApiError::SlowBody` when `e` (or what it wraps) is a [`rate_guarded`] body's refusal.
pub fn slow_body(e: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<TooSlow>() {
            return Some(ApiError::SlowBody {
                min_rate: t.min_rate,
            });
        }
        cur = err.source();
    }
    None
}

/// `body`, failing once its average rate since the request began falls under `min_rate`
/// bytes/s after `grace`: a client sending a byte a second cannot hold its connection and
/// buffer for the whole request deadline. Each chunk must arrive before
/// `start + max(grace, received / min_rate)`.
pub fn rate_guarded(body: Body, min_rate: u64, grace: Duration) -> Body {
    let start = tokio::time::Instant::now();
    let stream = body.into_data_stream();
    let guarded = futures_util::stream::unfold(Some((stream, 0u64)), move |state| async move {
        let (mut stream, got) = state?;
        let allowed = Duration::from_secs_f64(got as f64 / min_rate.max(1) as f64).max(grace);
        match tokio::time::timeout_at(start + allowed, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                let got = got + chunk.len() as u64;
                Some((Ok(chunk), Some((stream, got))))
            }
            Ok(Some(Err(e))) => Some((Err(axum::Error::new(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(TooSlow { min_rate })), None)),
        }
    });
    Body::from_stream(guarded)
}

/// Parses a JSON body. The error names the place, never the value found there: a value
/// may be image data.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "malformed JSON",
            Category::Data => "a field is missing, unknown or of the wrong type",
        };
        ApiError::BadJson(format!("{what} (line {}, column {})", e.line(), e.column()))
    })
}

/// Standard base64, padded or not, whitespace ignored, an optional `data:...;base64,`
/// prefix accepted (browsers produce it).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, ApiError> {
    let s = match s.find(";base64,") {
        Some(i) if s.starts_with("data:") => &s[i + 8..],
        _ => s,
    };
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.is_empty() {
        return Err(ApiError::MissingField("image data".into()));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(clean.as_bytes())
        .map_err(|_| ApiError::BadBase64)
}

/// A multipart form: one file and the text fields.
#[derive(Default)]
pub struct Form {
    pub file: Option<Vec<u8>>,
    pub fields: HashMap<String, String>,
}

/// A multipart form with several named files.
#[derive(Default)]
pub struct Files {
    pub files: HashMap<String, Vec<u8>>,
    pub fields: HashMap<String, String>,
}

/// As [`form`], keeping each of the file fields `names` (each at most `file_limit` bytes).
pub async fn form_files(
    mp: Multipart,
    names: &[&str],
    file_limit: usize,
) -> Result<Files, ApiError> {
    let mut out = Files::default();
    read_form(mp, names, file_limit, &mut out).await?;
    Ok(out)
}

/// Reads the form, keeping the file field `file_field` (at most `file_limit` bytes) and the
/// text fields; other file fields are read past and dropped.
pub async fn form(mp: Multipart, file_field: &str, file_limit: usize) -> Result<Form, ApiError> {
    let mut files = Files::default();
    read_form(mp, &[file_field], file_limit, &mut files).await?;
    Ok(Form {
        file: files.files.remove(file_field),
        fields: files.fields,
    })
}

async fn read_form(
    mut mp: Multipart,
    names: &[&str],
    file_limit: usize,
    form: &mut Files,
) -> Result<(), ApiError> {
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if let Some(slow) = slow_body(&e) {
            slow
        } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { limit: file_limit }
        } else {
            ApiError::InvalidParam(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(too_large)? {
        let name = field.name().unwrap_or("").to_string();
        if names.contains(&name.as_str()) {
            let mut buf = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(too_large)? {
                if buf.len() + chunk.len() > file_limit {
                    return Err(ApiError::ImageTooLarge {
                        size: buf.len() + chunk.len(),
                        limit: file_limit,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            form.files.insert(name, buf);
        } else if field.file_name().is_none() {
            let text = field.text().await.map_err(too_large)?;
            if text.len() <= 1024 {
                form.fields.insert(name, text);
            }
        } else {
            while field.chunk().await.map_err(too_large)?.is_some() {}
        }
    }
    Ok(())
}

/// The image bytes must fit the dialect's file limit.
pub fn check_file_size(bytes: &[u8], limit: usize) -> Result<(), ApiError> {
    if bytes.len() > limit {
        return Err(ApiError::ImageTooLarge {
            size: bytes.len(),
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_decode_and_garbage_does_not() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(
            decode_base64("data:image/png;base64,aG\nk=").unwrap(),
            b"hi"
        );
        assert!(matches!(
            decode_base64("@@not base64@@"),
            Err(ApiError::BadBase64)
        ));
        assert!(matches!(decode_base64(""), Err(ApiError::MissingField(_))));
    }

    #[test]
    fn json_errors_do_not_echo_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct R {
            threshold: f32,
        }
        let e = json::<R>(br#"{"threshold": "/9j/4AAQSkZJRgABAQ"}"#).unwrap_err();
        assert!(!e.to_string().contains("/9j/"), "{e}");
        assert!(e.to_string().contains("column"), "{e}");
    }
}

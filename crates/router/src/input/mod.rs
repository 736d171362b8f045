//! Getting the image out of a request: bodies read under a limit, base64, multipart files,
//! and URLs fetched under the SSRF rules of `fetch`.

pub mod fetch;

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use base64::Engine;

use crate::error::ApiError;

/// A request body by kind, chosen from its content type.
pub enum Payload {
    Json(Bytes),
    Multipart(Multipart),
}

/// Refuses a body whose declared length is over `limit` before reading any of it, then
/// reads JSON whole (still under `limit`) or hands multipart over for streaming.
pub async fn payload(req: Request, limit: usize) -> Result<Payload, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ctype.starts_with("application/json") {
        Ok(Payload::Json(read_limited(req.into_body(), limit).await?))
    } else if ctype.starts_with("multipart/form-data") {
        Multipart::from_request(req, &())
            .await
            .map(Payload::Multipart)
            .map_err(|e| ApiError::InvalidParam(e.body_text()))
    } else {
        Err(ApiError::UnsupportedMediaType(ctype))
    }
}

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::BodyTooLarge { limit })
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

/// Reads the form, keeping the file field `file_field` (at most `file_limit` bytes) and the
/// text fields; other file fields are read past and dropped.
pub async fn form(
    mut mp: Multipart,
    file_field: &str,
    file_limit: usize,
) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge { limit: file_limit }
        } else {
            ApiError::InvalidParam(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(too_large)? {
        let name = field.name().unwrap_or("").to_string();
        if name == file_field {
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
            form.file = Some(buf);
        } else if field.file_name().is_none() {
            let text = field.text().await.map_err(too_large)?;
            if text.len() <= 1024 {
                form.fields.insert(name, text);
            }
        } else {
            while field.chunk().await.map_err(too_large)?.is_some() {}
        }
    }
    Ok(form)
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

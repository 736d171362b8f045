//! API keys: compared in constant time, never logged.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub fn keys_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Checks `header` against `expected`; with authentication off every request passes, with it
/// on a dialect without a configured key refuses everyone.
pub fn check_header(
    auth: bool,
    headers: &HeaderMap,
    header: &str,
    prefix: &str,
    expected: Option<&str>,
) -> Result<(), ApiError> {
    if !auth {
        return Ok(());
    }
    let given = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(prefix));
    match (given, expected) {
        (Some(g), Some(e)) if keys_match(g.trim(), e) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole_values() {
        assert!(keys_match("secret", "secret"));
        assert!(!keys_match("secre", "secret"));
        assert!(!keys_match("secret2", "secret"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer k1".parse().unwrap());
        assert!(check_header(true, &h, "authorization", "Bearer ", Some("k1")).is_ok());
        assert!(check_header(true, &h, "authorization", "Bearer ", Some("k2")).is_err());
        assert!(check_header(true, &h, "authorization", "Bearer ", None).is_err());
        assert!(check_header(false, &HeaderMap::new(), "x", "", None).is_ok());
    }
}

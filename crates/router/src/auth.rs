//! API keys: compared in constant time, never logged.

use std::sync::Arc;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The API keys a server has: one per dialect (SpoofSense's two endpoints share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKey {
    Native,
    Nhn,
    Accura,
    Jcv,
    SpoofSense,
}

impl ApiKey {
    const ALL: [ApiKey; 5] = [
        ApiKey::Native,
        ApiKey::Nhn,
        ApiKey::Accura,
        ApiKey::Jcv,
        ApiKey::SpoofSense,
    ];
}

/// How many requests each key may have in flight at once (reading its body, waiting, or
/// being judged): one client with a valid key cannot take every connection and buffer.
pub struct KeyLimits {
    limit: usize,
    in_flight: [Arc<Semaphore>; ApiKey::ALL.len()],
}

impl KeyLimits {
    /// `limit` requests per key; 0 for no limit.
    pub fn new(limit: usize) -> Self {
        let n = if limit == 0 {
            Semaphore::MAX_PERMITS
        } else {
            limit
        };
        Self {
            limit,
            in_flight: std::array::from_fn(|_| Arc::new(Semaphore::new(n))),
        }
    }

    /// A place for one request of `key`, held until the request is answered, or
    /// `KeyBusy` (429) when the key has all its places in use.
    pub fn admit(&self, key: ApiKey) -> Result<OwnedSemaphorePermit, ApiError> {
        let i = ApiKey::ALL
            .iter()
            .position(|k| *k == key)
            .expect("every key is listed");
        self.in_flight[i]
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::KeyBusy { limit: self.limit })
    }
}

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

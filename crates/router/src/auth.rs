//! API keys: compared in constant time, never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    pub(crate) const ALL: [ApiKey; 5] = [
        ApiKey::Native,
        ApiKey::Nhn,
        ApiKey::Accura,
        ApiKey::Jcv,
        ApiKey::SpoofSense,
    ];

    pub(crate) fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .expect("every key is listed")
    }
}

/// How the audit trail names a key: `key:` and the first 12 hex digits of its sha256, so
/// that trails can tell keys apart without holding one; `none` without authentication.
pub(crate) fn key_id(auth: bool, key: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    match (auth, key) {
        (true, Some(k)) => {
            let hex: String = Sha256::digest(k.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("key:{}", &hex[..12])
        }
        _ => "none".to_string(),
    }
}

/// How many requests each key may have in flight at once (reading its body, waiting, or
/// being judged): one client with a valid key cannot take every connection and buffer.
/// Capture session tokens have places of their own, apart from the key that made them: a
/// few per token and a cap for all together, so the key's own requests are never refused
/// because of what holders of its tokens (end users' browsers) do.
pub struct KeyLimits {
    limit: usize,
    in_flight: [Arc<Semaphore>; ApiKey::ALL.len()],
    per_token: usize,
    all_tokens: usize,
    tokens: Arc<Semaphore>,
    /// Requests in flight per token id (only tokens with one or more).
    token_open: Arc<Mutex<HashMap<String, usize>>>,
}

/// A request's place, held until it is answered.
pub struct Place {
    _permit: OwnedSemaphorePermit,
    _token: Option<TokenSlot>,
}

struct TokenSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    id: String,
}

impl Drop for TokenSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.id);
            }
        }
    }
}

fn lock(m: &Mutex<HashMap<String, usize>>) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    // The counts stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 0 means no limit.
fn places(limit: usize) -> usize {
    if limit == 0 {
        Semaphore::MAX_PERMITS
    } else {
        limit
    }
}

impl KeyLimits {
    /// `limit` requests per key, `per_token` per session token and `all_tokens` for every
    /// token together; 0 for no limit.
    pub fn new(limit: usize, per_token: usize, all_tokens: usize) -> Self {
        Self {
            limit,
            in_flight: std::array::from_fn(|_| Arc::new(Semaphore::new(places(limit)))),
            per_token: places(per_token),
            all_tokens,
            tokens: Arc::new(Semaphore::new(places(all_tokens))),
            token_open: Arc::default(),
        }
    }

    /// A place for one request of `key`, held until the request is answered, or
    /// `KeyBusy` (429) when the key has all its places in use.
    pub fn admit(&self, key: ApiKey) -> Result<Place, ApiError> {
        let permit = self.in_flight[key.index()]
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::KeyBusy { limit: self.limit })?;
        Ok(Place {
            _permit: permit,
            _token: None,
        })
    }

    /// A place for one request of the session token `id`, or `TokenBusy` (429) when the
    /// token, or all tokens together, have their places in use.
    pub fn admit_token(&self, id: &str) -> Result<Place, ApiError> {
        let permit = self
            .tokens
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::TokenBusy {
                limit: self.all_tokens,
                all: true,
            })?;
        let mut open = lock(&self.token_open);
        let n = open.entry(id.to_string()).or_insert(0);
        if *n >= self.per_token {
            return Err(ApiError::TokenBusy {
                limit: self.per_token,
                all: false,
            });
        }
        *n += 1;
        Ok(Place {
            _permit: permit,
            _token: Some(TokenSlot {
                open: self.token_open.clone(),
                id: id.to_string(),
            }),
        })
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

    #[test]
    fn tokens_never_take_the_keys_places() {
        let l = KeyLimits::new(2, 1, 3);
        let a = l.admit_token("a").unwrap();
        assert!(matches!(
            l.admit_token("a"),
            Err(ApiError::TokenBusy {
                limit: 1,
                all: false
            })
        ));
        let _b = l.admit_token("b").unwrap();
        let _c = l.admit_token("c").unwrap();
        assert!(matches!(
            l.admit_token("d"),
            Err(ApiError::TokenBusy {
                limit: 3,
                all: true
            })
        ));
        // With every token place taken, the key still has both of its own.
        let _k1 = l.admit(ApiKey::Native).unwrap();
        let _k2 = l.admit(ApiKey::Native).unwrap();
        assert!(l.admit(ApiKey::Native).is_err());
        // An answered request gives its token's place back.
        drop(a);
        let _a = l.admit_token("a").unwrap();
        assert_eq!(lock(&l.token_open).len(), 3);
    }
}

//! The request id: the client's `X-Request-Id` when it is short and plain, else one made
//! here; it names the request in logs, the audit trail and every answer.

use axum::http::HeaderMap;

/// The header a request's id comes in (from the client, or made) and is answered in.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest client `X-Request-Id` kept (it goes into logs and answers).
pub const MAX_REQUEST_ID: usize = 128;

/// A client's request id is kept when it is one short value of `[A-Za-z0-9._:-]`.
fn acceptable(v: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

/// Drops a client's `X-Request-Id` that is long, repeated or of unsafe characters, so one
/// is generated (and answered) instead: no client writes kilobytes into every log line.
pub(crate) async fn screen(mut req: axum::extract::Request) -> axum::extract::Request {
    let mut given = req.headers().get_all(REQUEST_ID).iter();
    let keep = match (given.next(), given.next()) {
        (None, _) => true,
        (Some(v), None) => acceptable(v.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// The request's id (set by the layers `app` puts in front of every route).
pub(crate) fn of(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

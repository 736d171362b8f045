//! Admission, the same for every dialect: the credential its table entry names, a place
//! for the request (its key's, or its session token's), the refusal drained where it must
//! be, and the body read under the dialect's limits; then the decision under the server's
//! deadline, counted, logged and audited ([`decide`]). A dialect module only parses its
//! request and renders its answer.

use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::audit::Who;
use crate::auth::{self, Place};
use crate::dialect::{Bodies, Credential, Dialect, Purpose, Route, Sizes};
use crate::error::ApiError;
use crate::input::{self, Payload};
use crate::state::{AppState, Decided};
use crate::{request_id, sessions};

/// An admitted request: its place, held until it is answered, and its body.
pub(crate) struct Admitted {
    pub _place: Place,
    pub payload: Payload,
    pub sizes: Sizes,
    /// The capture session whose token made the request (native only).
    pub session: Option<sessions::Session>,
}

impl Admitted {
    /// The JSON body of a dialect that takes JSON only (admission refused any other).
    pub fn json(self) -> Result<axum::body::Bytes, ApiError> {
        match self.payload {
            Payload::Json(body) => Ok(body),
            Payload::Multipart(_) => Err(unsupported_multipart()),
        }
    }
}

fn unsupported_multipart() -> ApiError {
    ApiError::UnsupportedMediaType("multipart/form-data".into())
}

/// Admits `req` to its route's dialect for the endpoint's purpose, or refuses it (after
/// draining its body, see [`input::refuse_unread`]).
pub(crate) async fn admit(
    state: &AppState,
    route: Route,
    req: Request,
) -> Result<Admitted, ApiError> {
    let (dialect, purpose) = (route.dialect, route.endpoint.purpose);
    let limits = &state.cfg.limits;
    let sizes = (dialect.sizes)(limits);
    let (mut parts, body) = req.into_parts();
    let gate = authorize(state, dialect, purpose, &mut parts).await;
    let req = Request::from_parts(parts, body);
    let (place, session) = match gate {
        Ok(admitted) => admitted,
        Err(e) => return Err(input::refuse_unread(req, sizes.body, limits, e).await),
    };
    let payload = input::payload(req, sizes.body, limits).await?;
    if dialect.bodies == Bodies::Json && matches!(payload, Payload::Multipart(_)) {
        return Err(unsupported_multipart());
    }
    Ok(Admitted {
        _place: place,
        payload,
        sizes,
        session,
    })
}

/// One request by `route`, decided by `run` under the server's deadline, counted, logged
/// and (a verdict) audited: the request id and the result, for the dialect to render.
pub(crate) async fn decide<D: Decided>(
    state: &AppState,
    route: Route,
    headers: &HeaderMap,
    run: impl std::future::Future<Output = Result<D, ApiError>>,
) -> (String, Result<D, ApiError>) {
    let rid = request_id::of(headers);
    let endpoint = route.endpoint;
    let audited = (endpoint.purpose == Purpose::Verdict).then(|| who(route.dialect, headers));
    let res = state.handle(endpoint.label, &rid, audited, run).await;
    (rid, res)
}

/// Who the audit trail names for a request: the session for a token, else the key.
fn who(dialect: &Dialect, headers: &HeaderMap) -> Who {
    let token = match dialect.credential {
        Credential::BearerOrSessionToken => bearer(headers)
            .filter(|t| sessions::is_token(t))
            .and_then(sessions::token_id),
        _ => None,
    };
    match token {
        Some(id) => Who::Session(id.to_string()),
        None => Who::Key(dialect.key),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The dialect's credential, and a place for the request: the key's own, or a session
/// token's (apart from the key's), with the session. A verdict spends the token, guidance
/// does not; a token is spent only once it has a place, so a refusal for load does not use
/// it up.
async fn authorize(
    state: &AppState,
    dialect: &Dialect,
    purpose: Purpose,
    parts: &mut Parts,
) -> Result<(Place, Option<sessions::Session>), ApiError> {
    let cfg = &state.cfg;
    let headers = &parts.headers;
    let key = cfg.keys.get(dialect.key);
    match dialect.credential {
        Credential::BearerOrSessionToken => match bearer(headers) {
            Some(t) if cfg.auth && sessions::is_token(t) => {
                let session = state.sessions.check(t).map_err(ApiError::Session)?;
                let place = state.admit_token(&session.id)?;
                if purpose == Purpose::Verdict {
                    let spent = state.sessions.consume(t).map_err(ApiError::Session)?;
                    return Ok((place, Some(spent)));
                }
                return Ok((place, Some(session)));
            }
            _ => auth::check_header(cfg.auth, headers, "authorization", "Bearer ", key)?,
        },
        Credential::AppKeyInPathAndSecret if cfg.auth => {
            let Path(app_key) = Path::<String>::from_request_parts(parts, &())
                .await
                .map_err(|_| ApiError::Unauthorized)?;
            let app_key_ok = cfg
                .keys
                .nhn_app_key
                .as_deref()
                .is_some_and(|k| auth::keys_match(&app_key, k));
            if !app_key_ok {
                return Err(ApiError::Unauthorized);
            }
            auth::check_header(true, &parts.headers, "authorization", "", key)?
        }
        Credential::AppKeyInPathAndSecret => {}
        Credential::Header(names) => {
            let given = |name: &&str| auth::check_header(cfg.auth, headers, name, "", key).is_ok();
            if !names.iter().any(given) {
                return Err(ApiError::Unauthorized);
            }
        }
    }
    Ok((state.admit_key(dialect.key)?, None))
}

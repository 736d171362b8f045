//! The OpenAPI 3.1 description served at `/openapi.json`, derived from the types: request
//! and answer schemas from the dialects' own structs, one `#[utoipa::path]` per handler.
//! What the attributes cannot know is added from the tables they would otherwise repeat:
//! each dialect's error statuses (from [`ApiError::mapping`] through its table entry), its
//! credential, formats and byte limits, and its extra paths (`/v3/antispoofing`).

use std::collections::BTreeMap;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response};
use utoipa::OpenApi;

use crate::config::Limits;
use crate::dialect::{Credential, Dialect};
use crate::dialects;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "facelive",
        description = "Self-hosted passive face liveness: one image in, a verdict on its largest face out. The native API exposes everything; the NHN, Accura, JCV and SpoofSense dialects answer in their vendors' shapes."
    ),
    paths(
        dialects::native::liveness::check,
        dialects::native::liveness::quality,
        dialects::native::session::issue,
        dialects::native::verify::verify,
        dialects::native::verify::template,
        dialects::native::session::jwks,
        dialects::nhn::spoofing::spoofing,
        dialects::nhn::compare::compare,
        dialects::accura::liveness,
        dialects::jcv::liveness,
        dialects::spoofsense::antispoofing,
        dialects::spoofsense::robust,
        crate::ops::health,
        crate::ops::ready,
        crate::ops::info,
        crate::ops::metrics,
        crate::ops::openapi,
        crate::ops::docs,
        crate::ops::capture_page,
        crate::ops::capture_page_script,
        crate::ops::capture_module,
    )
)]
struct Api;

/// The document for a server with these limits.
pub fn document(limits: &Limits) -> Document {
    let mut doc = Api::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    for d in dialects::ALL {
        describe_dialect(&mut doc, d, limits);
    }
    doc
}

/// Adds what the tables know to each of `d`'s operations.
fn describe_dialect(doc: &mut Document, d: &Dialect, limits: &Limits) {
    let sizes = (d.sizes)(limits);
    let scheme = security_scheme(d.credential);
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(d.name, scheme);
    for e in d.endpoints {
        let Some(mut item) = doc.paths.paths.get(e.paths[0]).cloned() else {
            continue;
        };
        if let Some(op) = item.post.as_mut() {
            let mut notes = vec![
                format!("Image formats: {}.", d.formats.names().join(", ")),
                format!(
                    "At most {} bytes of body, {} bytes of image file.",
                    sizes.body, sizes.file
                ),
            ];
            if let Some(t) = e.decision.threshold() {
                notes.push(format!("Live above the vendor's threshold {t}."));
            }
            let text = op.description.take().unwrap_or_default();
            op.description = Some(format!("{text}\n\n{}", notes.join(" ")).trim().to_string());
            op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(d.name, [])]);
            error_responses(op, d);
        }
        for path in e.paths {
            doc.paths.paths.insert(path.to_string(), item.clone());
        }
    }
}

fn security_scheme(c: Credential) -> SecurityScheme {
    let header = |name: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(name)));
    match c {
        Credential::BearerOrSessionToken => {
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build())
        }
        // The app key is the path's `{appKey}`; the secret key this header.
        Credential::AppKeyInPathAndSecret => header("Authorization"),
        Credential::Header(names) => header(names[0]),
    }
}

/// Replaces the handler's `default` error answer by one answer per status the dialect
/// gives an error, each naming the error codes that land there.
fn error_responses(op: &mut Operation, d: &Dialect) {
    let Some(RefOr::T(error)) = op.responses.responses.remove("default") else {
        return;
    };
    let mut codes: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for e in ApiError::examples() {
        let at = codes.entry((d.error_status)(&e).as_u16()).or_default();
        let code = e.mapping().code;
        if !at.contains(&code) {
            at.push(code);
        }
    }
    for (status, names) in codes {
        let key = status.to_string();
        let description = format!("error: {}", names.join(", "));
        match op.responses.responses.get_mut(&key) {
            // NHN and SpoofSense answer errors with the success status: say so there.
            Some(RefOr::T(ok)) => ok.description = format!("{}; or {description}", ok.description),
            _ => {
                let mut r = Response::new(description);
                r.content = error.content.clone();
                op.responses.responses.insert(key, RefOr::T(r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_its_dialects_security_and_no_default_answer() {
        let doc = serde_json::to_value(document(&Limits::default())).unwrap();
        for d in dialects::ALL {
            for e in d.endpoints {
                for p in e.paths {
                    let op = &doc["paths"][p]["post"];
                    assert!(op["security"][0][d.name].is_array(), "{p}: {op}");
                    assert!(op["responses"].get("default").is_none(), "{p}");
                }
            }
        }
        if std::env::var_os("FACELIVE_DUMP_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap());
        }
    }
}

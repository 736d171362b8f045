//! facelive's own API: everything the pipeline knows. Liveness and capture guidance
//! (`liveness.rs`), liveness with verify and reference templates (`verify.rs`), capture
//! sessions and their keys (`session.rs`).

pub(crate) mod liveness;
pub(crate) mod session;
pub(crate) mod verify;

use facelive_pipeline::ingest::Formats;

use crate::auth::ApiKey;
use crate::dialect::{Bodies, Credential, Dialect, Sizes};
use crate::error::ApiError;

pub static NATIVE: Dialect = Dialect {
    name: "native",
    key: ApiKey::Native,
    credential: Credential::BearerOrSessionToken,
    bodies: Bodies::JsonOrMultipart,
    formats: Formats::ALL,
    sizes: |l| Sizes {
        body: l.native_body,
        file: l.native_body,
    },
    error_status: ApiError::status,
    endpoints: &[
        &liveness::NATIVE_CHECK,
        &liveness::NATIVE_GUIDANCE,
        &verify::NATIVE_VERIFY,
        &verify::NATIVE_TEMPLATES,
    ],
};

//! NHN Cloud: Face Liveness (`spoofing.rs`) and Face Recognition's compare (`compare.rs`),
//! under one app key and secret key; what both render alike is in `shapes.rs`.
//!
//! Every answer is HTTP 200, errors included, as NHN Cloud documents: the outcome is in
//! `header.isSuccessful` and `resultCode`.

pub(crate) mod compare;
mod shapes;
pub(crate) mod spoofing;

use facelive_pipeline::ingest::Formats;

use crate::auth::ApiKey;
use crate::config::Limits;
use crate::dialect::{Bodies, Credential, Dialect, Sizes};
use crate::error::ApiError;

pub static NHN: Dialect = Dialect {
    name: "nhn",
    key: ApiKey::Nhn,
    credential: Credential::AppKeyInPathAndSecret,
    bodies: Bodies::JsonOrMultipart,
    // NHN's input guides (Face Liveness and Face Recognition): PNG and JPEG, 3,000,000 bytes.
    formats: Formats::PNG_JPEG,
    sizes: |l| Sizes {
        body: Limits::json_or_form_body(l.nhn_file),
        file: l.nhn_file,
    },
    error_status: ApiError::nhn_status,
    endpoints: &[&spoofing::NHN_SPOOFING, &compare::NHN_COMPARE],
};

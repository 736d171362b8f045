//! One module per API dialect, each owning its table entry ([`crate::dialect::Dialect`]),
//! its request and answer shapes and its handlers: request in, pipeline options out;
//! verdict or error in, the dialect's response out.

pub(crate) mod accura;
pub(crate) mod jcv;
pub(crate) mod native;
pub(crate) mod nhn;
pub(crate) mod render;
pub(crate) mod spoofsense;

pub use accura::ACCURA;
pub use jcv::JCV;
pub use native::NATIVE;
pub use nhn::NHN;
pub use spoofsense::SPOOFSENSE;

use crate::dialect::Dialect;

/// Every dialect the server speaks.
pub static ALL: [&Dialect; 5] = [&NATIVE, &NHN, &ACCURA, &JCV, &SPOOFSENSE];

//! The arithmetic of facelive's own tract operators, apart from the graph rewrites that
//! plan them (`../pointwise.rs`, `../depthwise.rs`).
//!
//! One dispatch style, shared with the pipeline's `imageops/lanes.rs`: each kernel has the
//! plain definition, which every CPU runs, and its vector path behind
//! `#[target_feature]`, chosen at run time (`is_x86_feature_detected!`, a constant where
//! the build already assumes the feature). The choice is a value ([`pointwise::Path`]), so
//! the property tests run every path the CPU has against the definition, in any build.

pub(crate) mod pointwise;

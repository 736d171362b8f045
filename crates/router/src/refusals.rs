//! Refusals (bad keys, overload, slow or oversized bodies) and client errors (requests that
//! fail validation, whoever sends them: a session token sits in end users' browsers) are
//! what a flood is made of, so they are not logged one by one: they are counted in
//! `/metrics` like every request, and summed here into at most one warning per interval,
//! with a count per error code. No client can make the log grow faster than that.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// How often a summary of refusals may be logged.
pub const INTERVAL: Duration = Duration::from_secs(10);

pub struct Refusals {
    state: Mutex<Window>,
    interval: Duration,
}

struct Window {
    started: Instant,
    counts: BTreeMap<&'static str, u64>,
}

/// Whether an error is one a client can repeat at will (logged in summaries only): every
/// client error, authenticated or not, and overload.
pub fn is_summarised(e: &ApiError) -> bool {
    e.mapping().status.is_client_error() || matches!(e, ApiError::Busy)
}

impl Refusals {
    pub fn new(interval: Duration) -> Self {
        Self {
            state: Mutex::new(Window {
                started: Instant::now(),
                counts: BTreeMap::new(),
            }),
            interval,
        }
    }

    /// Counts one refusal; once the interval has passed, returns the window's counts (this
    /// refusal included) to be logged and starts a new window.
    pub fn record(&self, code: &'static str) -> Option<BTreeMap<&'static str, u64>> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *w.counts.entry(code).or_insert(0) += 1;
        if w.started.elapsed() < self.interval {
            return None;
        }
        w.started = Instant::now();
        Some(std::mem::take(&mut w.counts))
    }

    /// Counts one refusal and logs the summary when one is due.
    pub fn note(&self, code: &'static str) {
        if let Some(counts) = self.record(code) {
            let total: u64 = counts.values().sum();
            tracing::warn!(
                total,
                by_code = ?counts,
                seconds = self.interval.as_secs(),
                "requests refused or failed by the client since the last summary"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_into_one_summary_per_interval() {
        let r = Refusals::new(Duration::from_millis(200));
        for _ in 0..1000 {
            assert!(r.record("unauthorized").is_none());
        }
        assert!(r.record("overloaded").is_none());
        std::thread::sleep(Duration::from_millis(250));
        let counts = r.record("overloaded").expect("a summary is due");
        assert_eq!(counts["unauthorized"], 1000);
        assert_eq!(counts["overloaded"], 2);
        // A new window starts empty.
        assert!(r.record("unauthorized").is_none());
    }
}

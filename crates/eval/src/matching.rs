//! Face verification metrics in ISO/IEC 19795-1 terms, over compared pairs.
//!
//! A pair is genuine (same person) or an impostor pair, and either a similarity or a
//! failure to acquire (a face could not be found or used in one of its images). At a
//! threshold, a pair matches when its similarity is at least the threshold: FMR is the
//! share of compared impostor pairs that match, FNMR the share of compared genuine pairs
//! that do not. Failures to acquire are counted apart (FTA), not folded into either rate.
//! Every rate comes with its 95% Wilson score interval.

use serde::Serialize;

use crate::Rate;

/// One compared pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub genuine: bool,
    /// The similarity, or `None` when the pair could not be compared.
    pub similarity: Option<f32>,
}

/// FMR and FNMR at one threshold.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MatchRates {
    pub threshold: f32,
    pub fmr: Rate,
    pub fnmr: Rate,
}

/// The comparisons of a set, sorted for queries.
pub struct Matching {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
    not_acquired: (usize, usize),
}

impl Matching {
    pub fn new(pairs: &[Comparison]) -> Self {
        let mut m = Matching {
            genuine: Vec::new(),
            impostor: Vec::new(),
            not_acquired: (0, 0),
        };
        for p in pairs {
            match (p.genuine, p.similarity.filter(|s| s.is_finite())) {
                (true, Some(s)) => m.genuine.push(s),
                (false, Some(s)) => m.impostor.push(s),
                (true, None) => m.not_acquired.0 += 1,
                (false, None) => m.not_acquired.1 += 1,
            }
        }
        m.genuine.sort_by(f32::total_cmp);
        m.impostor.sort_by(f32::total_cmp);
        m
    }

    pub fn at(&self, t: f32) -> MatchRates {
        let below = |v: &[f32]| v.partition_point(|s| *s < t);
        let impostor_matched = self.impostor.len() - below(&self.impostor);
        MatchRates {
            threshold: t,
            fmr: Rate::new(impostor_matched, self.impostor.len()),
            fnmr: Rate::new(below(&self.genuine), self.genuine.len()),
        }
    }

    /// The lowest threshold (a similarity of the set, or just above one) whose FMR is at
    /// most `target`: at most `floor(target * impostors)` impostor pairs at or above it.
    pub fn threshold_for_fmr(&self, target: f64) -> f32 {
        let n = self.impostor.len();
        let allowed = (target * n as f64).floor() as usize;
        if allowed >= n {
            return self.impostor.first().copied().unwrap_or(-1.0);
        }
        // Impostors sorted ascending: the (allowed+1)-th highest must fall below.
        let pivot = self.impostor[n - 1 - allowed];
        next_up(pivot)
    }

    /// Failures to acquire among genuine and impostor pairs.
    pub fn failures_to_acquire(&self) -> (Rate, Rate) {
        let (g, i) = self.not_acquired;
        (
            Rate::new(g, g + self.genuine.len()),
            Rate::new(i, i + self.impostor.len()),
        )
    }

    /// (FMR, FNMR) at every similarity of the set, lowest threshold first: the DET curve.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        let mut ts: Vec<f32> = self.genuine.iter().chain(&self.impostor).copied().collect();
        ts.sort_by(f32::total_cmp);
        ts.dedup();
        ts.iter()
            .map(|&t| {
                let r = self.at(t);
                (r.fmr.value, r.fnmr.value)
            })
            .collect()
    }
}

/// The next float above `v` (so that `v` itself no longer counts as at or above).
fn next_up(v: f32) -> f32 {
    if v.is_nan() || v == f32::INFINITY {
        return v;
    }
    let bits = v.to_bits();
    let next = if v == 0.0 {
        1
    } else if v > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(genuine: &[f32], impostor: &[f32]) -> Vec<Comparison> {
        genuine
            .iter()
            .map(|&s| Comparison {
                genuine: true,
                similarity: Some(s),
            })
            .chain(impostor.iter().map(|&s| Comparison {
                genuine: false,
                similarity: Some(s),
            }))
            .collect()
    }

    #[test]
    fn rates_count_at_or_above_as_a_match_and_keep_failures_apart() {
        let mut p = pairs(&[0.9, 0.8, 0.3], &[0.1, 0.2, 0.5, 0.3]);
        p.push(Comparison {
            genuine: true,
            similarity: None,
        });
        let m = Matching::new(&p);
        let r = m.at(0.3);
        assert_eq!((r.fmr.count, r.fmr.total), (2, 4));
        assert_eq!((r.fnmr.count, r.fnmr.total), (0, 3));
        let r = m.at(0.5);
        assert_eq!((r.fmr.count, r.fnmr.count), (1, 1));
        assert_eq!(m.failures_to_acquire().0.count, 1);
    }

    #[test]
    fn the_fmr_threshold_admits_no_more_impostors_than_the_target_allows() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let m = Matching::new(&pairs(&[0.95], &impostor));
        for target in [0.0, 0.001, 0.01, 0.1] {
            let t = m.threshold_for_fmr(target);
            let r = m.at(t);
            assert!(r.fmr.value <= target, "{target}: {r:?}");
            // One step lower admits one impostor too many.
            let below = m.at(f32::from_bits(t.to_bits() - 1));
            assert!(below.fmr.value > target, "{target}: {below:?}");
        }
    }
}

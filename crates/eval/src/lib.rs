//! Presentation attack detection metrics in ISO/IEC 30107-3 terms, over labelled results.
//!
//! A result is an attack (with its species) or a bona fide presentation, and either a live
//! score or a failure to acquire (no face, unreadable image, failed quality check). At a
//! threshold, an attack is accepted when its score is at least the threshold; a bona fide
//! presentation is rejected when its score is below it or it was not acquired (a real user
//! turned away is turned away, whatever the reason). Every rate comes with a 95% Wilson
//! score interval.
//!
//! Real sets have attack species of one or two images, whose APCER can only be 0 or 100%.
//! Species with fewer images than a minimum are reported and flagged but left out of the
//! worst-species APCER (and so of ACER, the EER and BPCER@APCER); the pooled APCER counts
//! every attack.

pub mod matching;
pub mod plot;

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    BonaFide,
    Attack { species: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    NoFace,
    Unreadable,
    Quality,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub label: Label,
    /// The live score, or why none was produced.
    pub score: Result<f32, Failure>,
}

/// A proportion with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub count: usize,
    pub total: usize,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Rate {
    pub fn new(count: usize, total: usize) -> Rate {
        if total == 0 {
            return Rate {
                count,
                total,
                value: 0.0,
                ci_low: 0.0,
                ci_high: 1.0,
            };
        }
        let (n, p, z) = (total as f64, count as f64 / total as f64, 1.959964);
        let denom = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denom;
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
        Rate {
            count,
            total,
            value: p,
            ci_low: (centre - half).max(0.0),
            ci_high: (centre + half).min(1.0),
        }
    }
}

/// Error rates at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct AtThreshold {
    pub threshold: f32,
    /// APCER of each attack species.
    pub apcer_by_species: BTreeMap<String, Rate>,
    /// The worst APCER among species with at least the minimum number of images (among
    /// all species when none has): the ISO headline.
    pub apcer_worst: Rate,
    /// All attack presentations pooled.
    pub apcer_pooled: Rate,
    pub bpcer: Rate,
    /// Mean of the worst-species APCER and BPCER.
    pub acer: f64,
}

/// One point of the DET curve: the rates at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub threshold: f32,
    pub apcer_worst: f64,
    pub apcer_pooled: f64,
    pub bpcer: f64,
}

/// Failures to acquire, by kind, separately for bona fide and attack presentations.
#[derive(Debug, Clone, Serialize)]
pub struct Acquisition {
    pub bona_fide: BTreeMap<Failure, Rate>,
    pub attacks: BTreeMap<Failure, Rate>,
}

pub struct Evaluation<'a> {
    samples: &'a [Sample],
    bona_fide: usize,
    species: BTreeMap<String, usize>,
    /// Scores sorted ascending, bona fide and per attack species: a threshold's counts are
    /// two binary searches, so a DET curve over n images costs O(n log n), not O(n^2).
    bona_fide_scores: Vec<f32>,
    attack_scores: BTreeMap<String, Vec<f32>>,
    /// Species with fewer images are left out of the worst-species figures.
    min_species: usize,
}

/// How many of the ascending `sorted` scores are at least `t`.
fn at_least(sorted: &[f32], t: f32) -> usize {
    sorted.len() - sorted.partition_point(|&v| v < t)
}

impl<'a> Evaluation<'a> {
    /// Every species counts in the worst-species figures.
    pub fn new(samples: &'a [Sample]) -> Self {
        Self::with_min_species(samples, 1)
    }

    /// Species with fewer than `min` images are flagged and left out of the worst-species
    /// figures (all species count when none has `min`).
    pub fn with_min_species(samples: &'a [Sample], min: usize) -> Self {
        let mut species = BTreeMap::new();
        let mut bona_fide = 0;
        let mut bona_fide_scores = Vec::new();
        let mut attack_scores: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        for s in samples {
            match &s.label {
                Label::BonaFide => {
                    bona_fide += 1;
                    bona_fide_scores.extend(s.score.ok().filter(|v| !v.is_nan()));
                }
                Label::Attack { species: sp } => {
                    *species.entry(sp.clone()).or_insert(0) += 1;
                    attack_scores
                        .entry(sp.clone())
                        .or_default()
                        .extend(s.score.ok().filter(|v| !v.is_nan()));
                }
            }
        }
        bona_fide_scores.sort_by(f32::total_cmp);
        for v in attack_scores.values_mut() {
            v.sort_by(f32::total_cmp);
        }
        Self {
            samples,
            bona_fide,
            species,
            bona_fide_scores,
            attack_scores,
            min_species: min,
        }
    }

    /// The species left out of the worst-species figures, with their image counts.
    pub fn small_species(&self) -> BTreeMap<String, usize> {
        if !self.species.values().any(|&n| n >= self.min_species) {
            return BTreeMap::new();
        }
        self.species
            .iter()
            .filter(|(_, &n)| n < self.min_species)
            .map(|(k, &n)| (k.clone(), n))
            .collect()
    }

    pub fn min_species(&self) -> usize {
        self.min_species
    }

    pub fn at(&self, t: f32) -> AtThreshold {
        // Not acquired: never accepted, so a bona fide one is rejected.
        let rejected = self.bona_fide - at_least(&self.bona_fide_scores, t);
        let by: BTreeMap<String, Rate> = self
            .species
            .iter()
            .map(|(k, &n)| {
                let accepted = self.attack_scores.get(k).map_or(0, |v| at_least(v, t));
                (k.clone(), Rate::new(accepted, n))
            })
            .collect();
        let small = self.small_species();
        let worst = by
            .iter()
            .filter(|(k, _)| !small.contains_key(*k))
            .map(|(_, r)| *r)
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .unwrap_or(Rate::new(0, 0));
        let attacks: usize = self.species.values().sum();
        let bpcer = Rate::new(rejected, self.bona_fide);
        AtThreshold {
            threshold: t,
            apcer_pooled: Rate::new(by.values().map(|r| r.count).sum(), attacks),
            apcer_by_species: by,
            acer: (worst.value + bpcer.value) / 2.0,
            apcer_worst: worst,
            bpcer,
        }
    }

    /// Every threshold at which a decision changes, plus 0 and just above 1.
    fn candidates(&self) -> Vec<f32> {
        let mut t: Vec<f32> = self
            .samples
            .iter()
            .filter_map(|s| s.score.ok())
            .filter(|v| !v.is_nan())
            .collect();
        t.push(0.0);
        t.push(f32::from_bits(1.0f32.to_bits() + 1));
        t.sort_by(f32::total_cmp);
        t.dedup();
        t
    }

    /// The lowest threshold whose worst-species APCER is at most `target`, and the rates there:
    /// BPCER@APCER=target.
    pub fn at_apcer(&self, target: f64) -> AtThreshold {
        self.candidates()
            .into_iter()
            .map(|t| self.at(t))
            .find(|r| r.apcer_worst.value <= target + 1e-12)
            // Only scores above 1 (which the callers refuse) are accepted everywhere.
            .unwrap_or_else(|| self.at(f32::INFINITY))
    }

    /// The lowest multiple of `step` at which the APCER chosen by `apcer` is at most
    /// `target`: how an operating point is calibrated.
    pub fn threshold_for(
        &self,
        target: f64,
        step: f32,
        apcer: impl Fn(&AtThreshold) -> f64,
    ) -> AtThreshold {
        let steps = (1.0 / step).ceil() as usize;
        (0..=steps)
            .map(|i| self.at((i as f32 * step).min(1.0)))
            .find(|r| apcer(r) <= target + 1e-12)
            .unwrap_or_else(|| self.at(f32::from_bits(1.0f32.to_bits() + 1)))
    }

    /// Equal error rate: where worst-species APCER and BPCER cross (their mean at the
    /// threshold where they are closest).
    pub fn eer(&self) -> (f32, f64) {
        self.equal_error(|p| p.apcer_worst)
    }

    /// The equal error rate of the pooled APCER and BPCER.
    pub fn eer_pooled(&self) -> (f32, f64) {
        self.equal_error(|p| p.apcer_pooled)
    }

    fn equal_error(&self, apcer: impl Fn(&CurvePoint) -> f64) -> (f32, f64) {
        self.curve()
            .into_iter()
            .min_by(|a, b| {
                let d = |p: &CurvePoint| (apcer(p) - p.bpcer).abs();
                d(a).total_cmp(&d(b))
            })
            .map(|p| (p.threshold, (apcer(&p) + p.bpcer) / 2.0))
            .unwrap_or((0.5, 0.0))
    }

    pub fn acquisition(&self) -> Acquisition {
        let mut bf: BTreeMap<Failure, usize> = BTreeMap::new();
        let mut at: BTreeMap<Failure, usize> = BTreeMap::new();
        for s in self.samples {
            if let Err(f) = s.score {
                match s.label {
                    Label::BonaFide => *bf.entry(f).or_insert(0) += 1,
                    Label::Attack { .. } => *at.entry(f).or_insert(0) += 1,
                }
            }
        }
        let attacks: usize = self.species.values().sum();
        let all = [Failure::NoFace, Failure::Unreadable, Failure::Quality];
        Acquisition {
            bona_fide: all
                .iter()
                .map(|f| (*f, Rate::new(*bf.get(f).unwrap_or(&0), self.bona_fide)))
                .collect(),
            attacks: all
                .iter()
                .map(|f| (*f, Rate::new(*at.get(f).unwrap_or(&0), attacks)))
                .collect(),
        }
    }

    /// The rates at every decision change: the DET curves, worst-species and pooled.
    pub fn curve(&self) -> Vec<CurvePoint> {
        self.candidates()
            .into_iter()
            .map(|t| {
                let r = self.at(t);
                CurvePoint {
                    threshold: t,
                    apcer_worst: r.apcer_worst.value,
                    apcer_pooled: r.apcer_pooled.value,
                    bpcer: r.bpcer.value,
                }
            })
            .collect()
    }
}

/// One-sided exact McNemar test of two systems' decisions on the same images: `b` images
/// only the first got wrong, `c` only the second. The probability, were both equally good,
/// of the second winning `b` or more of the `b + c` images they disagree on (a binomial
/// tail at one half). Small: the second is better beyond chance.
pub fn mcnemar_one_sided(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    // ln C(n, k) - n ln 2, summed in log space so large n neither overflows nor underflows.
    let ln_fact = |k: usize| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
    let (ln_n, ln_half) = (ln_fact(n), n as f64 * 0.5f64.ln());
    (b..=n)
        .map(|k| (ln_n - ln_fact(k) - ln_fact(n - k) + ln_half).exp())
        .sum::<f64>()
        .min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_is_the_binomial_tail() {
        // P(X >= 10 | n = 12, p = 1/2) = (66 + 12 + 1) / 4096.
        assert!((mcnemar_one_sided(10, 2) - 79.0 / 4096.0).abs() < 1e-12);
        assert!((mcnemar_one_sided(0, 5) - 1.0).abs() < 1e-12);
        assert_eq!(mcnemar_one_sided(0, 0), 1.0);
        // Symmetric disagreement is no evidence either way.
        assert!(mcnemar_one_sided(200, 200) > 0.5);
        assert!(mcnemar_one_sided(260, 140) < 1e-8);
    }

    fn bf(s: f32) -> Sample {
        Sample {
            label: Label::BonaFide,
            score: Ok(s),
        }
    }
    fn atk(sp: &str, s: f32) -> Sample {
        Sample {
            label: Label::Attack { species: sp.into() },
            score: Ok(s),
        }
    }

    /// Counting by binary search gives what counting every sample gives, at every
    /// threshold, including ties, failures to acquire and a NaN score (never accepted).
    #[test]
    fn sorted_counts_match_a_plain_count() {
        let mut s: Vec<Sample> = (0..300u32)
            .map(|i| {
                // A fixed scramble of scores in [0, 1] with many ties.
                let v = ((i * 7919) % 101) as f32 / 100.0;
                match i % 5 {
                    0 => bf(v),
                    1 => atk("print", v),
                    2 => atk("replay", v),
                    3 if i % 3 == 0 => Sample {
                        label: Label::BonaFide,
                        score: Err(Failure::Quality),
                    },
                    _ => bf(v.sqrt()),
                }
            })
            .collect();
        s.push(bf(f32::NAN));
        s.push(atk("replay", f32::NAN));
        let e = Evaluation::new(&s);
        for i in 0..=102 {
            let t = i as f32 / 101.0;
            let r = e.at(t);
            let live = |x: &Sample| matches!(x.score, Ok(v) if v >= t);
            let rejected = s
                .iter()
                .filter(|x| x.label == Label::BonaFide && !live(x))
                .count();
            assert_eq!(r.bpcer.count, rejected, "t={t}");
            for sp in ["print", "replay"] {
                let accepted = s
                    .iter()
                    .filter(|x| matches!(&x.label, Label::Attack { species } if species == sp))
                    .filter(|x| live(x))
                    .count();
                assert_eq!(r.apcer_by_species[sp].count, accepted, "{sp} t={t}");
            }
        }
    }

    #[test]
    fn wilson_interval_matches_known_values() {
        let r = Rate::new(5, 100);
        assert!(
            (r.ci_low - 0.0215).abs() < 5e-4 && (r.ci_high - 0.1118).abs() < 5e-4,
            "{r:?}"
        );
        let zero = Rate::new(0, 20);
        assert_eq!(zero.ci_low, 0.0);
        assert!((zero.ci_high - 0.1611).abs() < 5e-4, "{zero:?}");
    }

    #[test]
    fn rates_follow_the_iso_definitions() {
        let s = vec![
            bf(0.9),
            bf(0.8),
            bf(0.3),
            Sample {
                label: Label::BonaFide,
                score: Err(Failure::NoFace),
            },
            atk("print", 0.1),
            atk("print", 0.6),
            atk("replay", 0.2),
            atk("replay", 0.4),
            Sample {
                label: Label::Attack {
                    species: "replay".into(),
                },
                score: Err(Failure::Quality),
            },
        ];
        let e = Evaluation::new(&s);
        let r = e.at(0.5);
        assert_eq!(r.apcer_by_species["print"].count, 1);
        assert_eq!(r.apcer_by_species["replay"].count, 0);
        assert_eq!(r.apcer_worst.value, 0.5);
        assert_eq!((r.apcer_pooled.count, r.apcer_pooled.total), (1, 5));
        // The bona fide image with no face counts as rejected.
        assert_eq!((r.bpcer.count, r.bpcer.total), (2, 4));
        assert_eq!(r.acer, 0.5);
        // Lowest threshold accepting no attack: just above 0.6.
        let z = e.at_apcer(0.0);
        assert!(z.threshold > 0.6 && z.threshold <= 0.8, "{}", z.threshold);
        assert_eq!(z.bpcer.count, 2);
        let fta = e.acquisition();
        assert_eq!(fta.bona_fide[&Failure::NoFace].count, 1);
        assert_eq!(fta.attacks[&Failure::Quality].count, 1);
        let (t, eer) = e.eer();
        assert!((0.0..=1.0).contains(&eer) && t > 0.0, "{t} {eer}");
    }
}

//! The logistic head: standardise the features on the training rows, fit an L2-penalised
//! logistic regression (linfa), and choose the penalty by grouped cross-validation inside
//! the training rows only.

use facelive_models::HeadSpec;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use crate::{grouped_folds, AdaptError, Folds};

/// The L2 penalties tried (linfa's `alpha`: the loss is the summed log-loss plus
/// alpha/2 times the squared weights).
pub const L2_GRID: [f64; 7] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0];

/// A head and the penalty it was fitted with.
#[derive(Debug, Clone)]
pub struct FittedHead {
    pub spec: HeadSpec,
    pub l2: f64,
}

fn standardisation(x: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let d = x[0].len();
    let n = x.len() as f64;
    let mut mean = vec![0.0; d];
    for row in x {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64 / n;
        }
    }
    let mut var = vec![0.0; d];
    for row in x {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (*v as f64 - m).powi(2) / n;
        }
    }
    // A feature constant over the training rows is left unscaled (its weight stays ~0).
    let std = var
        .into_iter()
        .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, std)
}

/// The head fitted on all of `x` with penalty `l2`.
fn fit_fixed(
    x: &[Vec<f32>],
    live: &[bool],
    l2: f64,
    judges: &[String],
) -> Result<HeadSpec, AdaptError> {
    if live.iter().all(|l| *l) || live.iter().all(|l| !*l) {
        return Err(AdaptError::OneClass);
    }
    let (mean, std) = standardisation(x);
    let d = mean.len();
    let z = Array2::from_shape_fn((x.len(), d), |(i, j)| (x[i][j] as f64 - mean[j]) / std[j]);
    let y = Array1::from_iter(live.iter().copied());
    let fitted = LogisticRegression::default()
        .alpha(l2)
        .max_iterations(500)
        .fit(&Dataset::new(z, y))
        .map_err(|e| AdaptError::Fit(e.to_string()))?;
    // linfa's positive class is the more frequent one: turn the weights towards live.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok(HeadSpec {
        judges: judges.to_vec(),
        mean,
        std,
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        bias: sign * fitted.intercept(),
    })
}

fn log_loss(p: f32, live: bool) -> f64 {
    let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
    if live {
        -p.ln()
    } else {
        -(1.0 - p).ln()
    }
}

fn rows<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
    v.iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(x, _)| x.clone())
        .collect()
}

/// The mean out-of-fold log-loss of penalty `l2` over grouped folds of these rows.
fn inner_loss(
    x: &[Vec<f32>],
    live: &[bool],
    folds: &Folds,
    l2: f64,
    judges: &[String],
) -> Result<f64, AdaptError> {
    let mut total = 0.0;
    let mut n = 0usize;
    for f in 0..folds.k {
        let train: Vec<bool> = folds.of.iter().map(|g| *g != f).collect();
        let spec = match fit_fixed(&rows(x, &train), &rows(live, &train), l2, judges) {
            Ok(s) => s,
            // A split whose training side has one class says nothing about the penalty.
            Err(AdaptError::OneClass) => continue,
            Err(e) => return Err(e),
        };
        for (i, _) in train.iter().enumerate().filter(|(_, t)| !**t) {
            total += log_loss(spec.score(&x[i]), live[i]);
            n += 1;
        }
    }
    Ok(if n == 0 {
        f64::INFINITY
    } else {
        total / n as f64
    })
}

/// The head fitted on these rows, its penalty the one of [`L2_GRID`] with the lowest
/// out-of-fold log-loss over `inner_folds` grouped folds of these rows' groups.
pub fn fit_head(
    x: &[Vec<f32>],
    live: &[bool],
    groups: &[&str],
    judges: &[String],
    inner_folds: usize,
    seed: u64,
) -> Result<FittedHead, AdaptError> {
    if x.len() != live.len() || x.len() != groups.len() || x.is_empty() {
        return Err(AdaptError::Shape(format!(
            "{} rows, {} labels, {} groups",
            x.len(),
            live.len(),
            groups.len()
        )));
    }
    let folds = grouped_folds(groups, inner_folds, seed)?;
    let mut best = (f64::INFINITY, L2_GRID[0]);
    for l2 in L2_GRID {
        let loss = inner_loss(x, live, &folds, l2, judges)?;
        if loss < best.0 {
            best = (loss, l2);
        }
    }
    Ok(FittedHead {
        spec: fit_fixed(x, live, best.1, judges)?,
        l2: best.1,
    })
}

/// Out-of-fold live scores: each row scored by a head trained (penalty chosen inside) on
/// the other folds only. Also the penalty each fold chose.
pub fn out_of_fold(
    x: &[Vec<f32>],
    live: &[bool],
    groups: &[&str],
    folds: &Folds,
    judges: &[String],
    inner_folds: usize,
    seed: u64,
) -> Result<(Vec<f32>, Vec<f64>), AdaptError> {
    let mut scores = vec![f32::NAN; x.len()];
    let mut chosen = Vec::with_capacity(folds.k);
    for f in 0..folds.k {
        let train: Vec<bool> = folds.of.iter().map(|g| *g != f).collect();
        let head = fit_head(
            &rows(x, &train),
            &rows(live, &train),
            &rows(groups, &train),
            judges,
            inner_folds,
            seed,
        )?;
        for (i, _) in train.iter().enumerate().filter(|(_, t)| !**t) {
            scores[i] = head.spec.score(&x[i]);
        }
        chosen.push(head.l2);
    }
    Ok((scores, chosen))
}

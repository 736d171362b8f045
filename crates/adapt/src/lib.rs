//! Adaptation of the judges to a customer's capture domain, from their features alone (no
//! model runs here): grouped k-fold splits, and a logistic head over the standardised,
//! concatenated features with its L2 penalty chosen by grouped cross-validation inside the
//! training folds. A group (a person, a device, a video) is never in the training and the
//! test side of a split at once: frames of one video are near-duplicates.

#[cfg(feature = "fine-tune")]
mod finetune;
mod folds;
mod head;

#[cfg(feature = "fine-tune")]
pub use finetune::{FineTune, Tail, TailWeights};
pub use folds::{grouped_folds, Folds};
pub use head::{fit_head, out_of_fold, FittedHead, L2_GRID};

#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("too few groups: {found} (at least {needed} are needed for grouped cross-validation)")]
    TooFewGroups { found: usize, needed: usize },
    #[error(
        "too few images: {live} live and {spoof} spoof (at least {needed} of each are needed)"
    )]
    TooFewImages {
        live: usize,
        spoof: usize,
        needed: usize,
    },
    #[error("a training fold has only one class (its groups hold only live or only spoof images)")]
    OneClass,
    #[error("the samples' lengths differ: {0}")]
    Shape(String),
    #[error("logistic regression failed: {0}")]
    Fit(String),
}

/// The least a set needs before any training: per class, and distinct groups.
pub const MIN_PER_CLASS: usize = 20;
pub const MIN_GROUPS: usize = 3;

/// Refuses a set too small to train and measure on.
pub fn check_size(live: &[bool], groups: &[&str]) -> Result<(), AdaptError> {
    let n_live = live.iter().filter(|l| **l).count();
    let n_spoof = live.len() - n_live;
    if n_live < MIN_PER_CLASS || n_spoof < MIN_PER_CLASS {
        return Err(AdaptError::TooFewImages {
            live: n_live,
            spoof: n_spoof,
            needed: MIN_PER_CLASS,
        });
    }
    let mut distinct: Vec<&str> = groups.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_GROUPS {
        return Err(AdaptError::TooFewGroups {
            found: distinct.len(),
            needed: MIN_GROUPS,
        });
    }
    Ok(())
}

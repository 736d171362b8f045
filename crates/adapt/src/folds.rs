//! Grouped k-fold: every sample of a group lands in the same fold.

use sha2::{Digest, Sha256};

use crate::AdaptError;

/// Which fold each sample is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folds {
    /// The fold (0..k) of each sample, in the samples' order.
    pub of: Vec<usize>,
    pub k: usize,
}

/// The fold (0..k) of each sample, for `k` folds over the samples' groups; with fewer
/// groups than `k`, one fold per group (leave one group out). Groups are taken largest
/// first, ties in an order drawn from `seed`, each into the fold with the fewest samples so
/// far (the least-filled fold with the lowest number on a tie). Deterministic for a seed.
pub fn grouped_folds(groups: &[&str], k: usize, seed: u64) -> Result<Folds, AdaptError> {
    let mut distinct: Vec<(&str, usize)> = Vec::new();
    for g in groups {
        match distinct.iter_mut().find(|(name, _)| name == g) {
            Some((_, n)) => *n += 1,
            None => distinct.push((g, 1)),
        }
    }
    if distinct.len() < 2 || k < 2 {
        return Err(AdaptError::TooFewGroups {
            found: distinct.len(),
            needed: 2,
        });
    }
    let k = k.min(distinct.len());
    // The seed orders groups of equal size: a keyed hash of each name.
    let key = |g: &str| Sha256::digest(format!("{seed}:{g}").as_bytes());
    distinct.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| key(a.0).cmp(&key(b.0))));
    let mut filled = vec![0usize; k];
    let mut fold_of: Vec<(&str, usize)> = Vec::new();
    for (g, n) in distinct {
        let f = (0..k).min_by_key(|&f| (filled[f], f)).expect("k >= 2");
        filled[f] += n;
        fold_of.push((g, f));
    }
    let of = groups
        .iter()
        .map(|g| {
            fold_of
                .iter()
                .find(|(name, _)| name == g)
                .expect("every group placed")
                .1
        })
        .collect();
    Ok(Folds { of, k })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_stays_in_one_fold_and_every_fold_is_used() {
        let groups: Vec<String> = (0..230).map(|i| format!("g{}", i % 23)).collect();
        let refs: Vec<&str> = groups.iter().map(|s| s.as_str()).collect();
        let Folds { of: folds, k } = grouped_folds(&refs, 5, 7).unwrap();
        assert_eq!(k, 5);
        for (g, f) in refs.iter().zip(&folds) {
            let others = refs.iter().zip(&folds).filter(|(h, _)| h == &g);
            assert!(
                others.into_iter().all(|(_, h)| h == f),
                "{g} split across folds"
            );
        }
        for f in 0..5 {
            let n = folds.iter().filter(|x| **x == f).count();
            assert!((40..=50).contains(&n), "fold {f} has {n} of 230");
        }
    }

    #[test]
    fn fewer_groups_than_folds_is_leave_one_group_out() {
        let refs = ["a", "b", "a", "c", "b", "c"];
        let Folds { of: folds, k } = grouped_folds(&refs, 5, 1).unwrap();
        assert_eq!(k, 3);
        let mut distinct = folds.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct, [0, 1, 2]);
        assert_eq!(folds[0], folds[2]);
    }

    #[test]
    fn the_seed_changes_the_split_of_equal_groups_but_not_its_rule() {
        let groups: Vec<String> = (0..40).map(|i| format!("g{}", i % 8)).collect();
        let refs: Vec<&str> = groups.iter().map(|s| s.as_str()).collect();
        let a = grouped_folds(&refs, 4, 1).unwrap().of;
        assert_eq!(a, grouped_folds(&refs, 4, 1).unwrap().of);
        assert!((2..50).any(|s| grouped_folds(&refs, 4, s).unwrap().of != a));
    }

    #[test]
    fn one_group_cannot_be_split() {
        assert!(grouped_folds(&["a", "a", "a"], 5, 0).is_err());
    }
}

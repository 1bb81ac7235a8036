//! Distributions of measured values: median and spread (nearest rank).

use serde::Serialize;

/// A sample's median and spread, in the sample's unit. Percentiles are
/// nearest-rank: `p(q)` is the smallest value with at least `q` of the
/// sample at or below it, so every figure is one that was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dist {
    /// Number of values.
    pub n: usize,
    /// The median (for an even `n`, the lower middle value).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Dist {
    /// The distribution of `v`; `None` when it is empty (or holds a NaN,
    /// which no measurement gives).
    pub fn of(mut v: Vec<f64>) -> Option<Dist> {
        if v.is_empty() || v.iter().any(|x| x.is_nan()) {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Dist {
            n: v.len(),
            median: rank(0.5),
            min: v[0],
            max: v[v.len() - 1],
            p10: rank(0.1),
            p90: rank(0.9),
            p99: rank(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Dist::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (d.n, d.median, d.p10, d.p90, d.p99, d.min, d.max),
            (100, 50.0, 10.0, 90.0, 99.0, 1.0, 100.0)
        );
        let d = Dist::of(vec![3.0]).unwrap();
        assert_eq!(
            (d.median, d.p10, d.p99, d.min, d.max),
            (3.0, 3.0, 3.0, 3.0, 3.0)
        );
    }

    #[test]
    fn five_rounds_unsorted() {
        let d = Dist::of(vec![0.9, 0.7, 1.4, 0.8, 0.75]).unwrap();
        assert_eq!((d.median, d.min, d.max), (0.8, 0.7, 1.4));
        assert_eq!((d.p10, d.p90), (0.7, 1.4));
        // An even count: the lower middle value, a measured one.
        assert_eq!(Dist::of(vec![4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.0);
    }

    #[test]
    fn nothing_measured_is_no_distribution() {
        assert!(Dist::of(vec![]).is_none());
        assert!(Dist::of(vec![1.0, f64::NAN]).is_none());
    }
}

//! Paired statistics of an A/B run: McNemar's exact test and Newcombe's interval for the
//! difference of two paired proportions.
//!
//! Both sides route the same rows, so their accuracies are paired proportions. Over the 2×2
//! table of (A right?, B right?) only the discordant cells carry information about which is
//! better: `a_only` rows A got right and B wrong, `b_only` the reverse.

use serde::Serialize;

/// The two-sided 95% normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// The paired 2×2 table of correctness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Paired {
    /// Rows both sides routed exactly.
    pub both_right: usize,
    /// Rows only A routed exactly.
    pub a_only: usize,
    /// Rows only B routed exactly.
    pub b_only: usize,
    /// Rows neither side routed exactly.
    pub both_wrong: usize,
}

impl Paired {
    /// The table of per-row correctness `(a right, b right)`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut t = Paired::default();
        for pair in pairs {
            match pair {
                (true, true) => t.both_right += 1,
                (true, false) => t.a_only += 1,
                (false, true) => t.b_only += 1,
                (false, false) => t.both_wrong += 1,
            }
        }
        t
    }

    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.both_right + self.a_only + self.b_only + self.both_wrong
    }

    /// Accuracy of A minus accuracy of B, as a proportion (0 for an empty table).
    pub fn difference(&self) -> f64 {
        let n = self.rows();
        if n == 0 {
            0.0
        } else {
            (self.a_only as f64 - self.b_only as f64) / n as f64
        }
    }
}

/// The paired test's result, as written into the report.
#[derive(Debug, Clone, Serialize)]
pub struct PairedTest {
    /// The 2×2 table the test is computed from.
    pub table: Paired,
    /// Accuracy of A minus accuracy of B, in percentage points.
    pub difference_pct: f64,
    /// Newcombe's 95% interval for the difference (method 10), in percentage points.
    pub ci95_pct: (f64, f64),
    /// McNemar's exact two-sided p-value.
    pub mcnemar_p: f64,
    /// Which interval `ci95_pct` is.
    pub interval: &'static str,
}

impl PairedTest {
    /// McNemar's exact test and Newcombe's interval over a paired table.
    pub fn new(table: Paired) -> Self {
        let (lo, hi) = newcombe_paired_ci(&table, Z95);
        PairedTest {
            table,
            difference_pct: 100.0 * table.difference(),
            ci95_pct: (100.0 * lo, 100.0 * hi),
            mcnemar_p: mcnemar_exact(table.a_only, table.b_only),
            interval:
                "Newcombe (1998) method 10: square-and-add of Wilson score intervals, with the correlation correction for paired data",
        }
    }
}

/// McNemar's exact test: the two-sided binomial test of `b` successes in `b + c` trials at
/// p = ½, `min(1, 2·P(X ≤ min(b, c)))`. 1 when there are no discordant pairs.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    let k = b.min(c);
    // ln P(X = i) = ln C(n, i) − n ln 2, summed in log space so large n does not underflow.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_choose = 0.0f64;
    let mut terms = Vec::with_capacity(k + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose + ln_half_n);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Wilson's score interval for `x` successes in `n` trials.
pub fn wilson(x: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p) = (n as f64, x as f64 / n as f64);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's interval for the difference of paired proportions (Newcombe 1998, Statistics in
/// Medicine 17:2635–2650, method 10): each accuracy gets its Wilson interval, and the two are
/// combined with the estimated correlation φ of the pairs (set to 0 when a margin is empty).
pub fn newcombe_paired_ci(t: &Paired, z: f64) -> (f64, f64) {
    let n = t.rows();
    if n == 0 {
        return (-1.0, 1.0);
    }
    let (a, b, c, d) = (t.both_right as f64, t.a_only as f64, t.b_only as f64, t.both_wrong as f64);
    let nf = n as f64;
    let (p1, p2) = ((a + b) / nf, (a + c) / nf);
    let (l1, u1) = wilson(t.both_right + t.a_only, n, z);
    let (l2, u2) = wilson(t.both_right + t.b_only, n, z);
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    let phi = if margins > 0.0 {
        let cross = a * d - b * c;
        let corrected = if cross > nf / 2.0 {
            cross - nf / 2.0
        } else if cross < 0.0 {
            cross
        } else {
            0.0
        };
        corrected / margins.sqrt()
    } else {
        0.0
    };
    let diff = p1 - p2;
    let lower = diff - ((p1 - l1).powi(2) - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2).powi(2)).max(0.0).sqrt();
    let upper = diff + ((p2 - l2).powi(2) - 2.0 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1).powi(2)).max(0.0).sqrt();
    (lower.max(-1.0), upper.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Values from `scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue`, checked equal to
    /// statsmodels' `mcnemar([[0, b], [c, 0]], exact=True).pvalue` by the script that printed
    /// them (`scripts/ab_stats_reference.py`).
    #[test]
    fn mcnemar_matches_scipy() {
        for (b, c, expected) in MCNEMAR_SCIPY {
            let p = mcnemar_exact(*b, *c);
            assert!(close(p, *expected, 1e-12 * expected), "b={b} c={c}: {p} vs {expected}");
        }
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(7, 7), 1.0);
    }

    /// Fagerland, Lydersen & Laake, *Statistical Analysis of Contingency Tables* (2017),
    /// chapter 8, the Cavo et al. (2012) table [[59, 6], [16, 80]]: the Newcombe square-and-add
    /// interval for the paired difference is -0.0621 (95% CI -0.1186 to -0.0046), as the
    /// book's R package `contingencytables` prints it (tests/testthat/test-ch8.R).
    #[test]
    fn newcombe_matches_the_textbook_example() {
        let t = Paired { both_right: 59, a_only: 6, b_only: 16, both_wrong: 80 };
        assert!(close(t.difference(), -0.0621, 5e-5), "{}", t.difference());
        let (lo, hi) = newcombe_paired_ci(&t, Z95);
        assert!(close(lo, -0.1186, 5e-5), "{lo}");
        assert!(close(hi, -0.0046, 5e-5), "{hi}");
    }

    /// Wilson intervals (the Cavo table's margins 65/161 and 75/161 among them) against
    /// statsmodels' `proportion_confint(x, n, method="wilson")`.
    #[test]
    fn wilson_matches_statsmodels() {
        for (x, n, lo, hi) in WILSON_STATSMODELS {
            let (l, h) = wilson(*x, *n, Z95);
            assert!(close(l, *lo, 1e-12) && close(h, *hi, 1e-12), "{x}/{n}: ({l}, {h}) vs ({lo}, {hi})");
        }
    }

    #[test]
    fn table_counts_pairs() {
        let t = Paired::from_pairs([(true, true), (true, false), (false, true), (false, true), (false, false)]);
        assert_eq!(t, Paired { both_right: 1, a_only: 1, b_only: 2, both_wrong: 1 });
        assert_eq!(t.rows(), 5);
        assert!(close(t.difference(), -0.2, 1e-12));
    }

    // Printed by `scripts/ab_stats_reference.py` (scipy 1.17.1, statsmodels 0.15.0).
    const MCNEMAR_SCIPY: &[(usize, usize, f64)] = &[
        (6, 16, 0.052478790283203125),
        (1, 9, 0.021484375),
        (10, 10, 1.0),
        (3, 0, 0.25),
        (25, 40, 0.08168153394154003),
        (120, 95, 0.10145232764870649),
        (0, 12, 0.00048828125),
        (400, 330, 0.010605994778707762),
    ];
    const WILSON_STATSMODELS: &[(usize, usize, f64, f64)] = &[
        (65, 161, 0.3310367548370932, 0.4809037592679161),
        (75, 161, 0.390480631970418, 0.5427885827120047),
        (0, 12, 0.0, 0.24249400665524096),
        (12, 12, 0.7575059933447589, 0.9999999999999999),
        (140, 200, 0.6332093162728073, 0.759252553176286),
    ];
}

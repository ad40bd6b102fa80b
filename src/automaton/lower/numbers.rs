//! Numbers: integers and decimals within bounds (integer ranges as regexes,
//! decimal ranges digit by digit in [`decimal`]), and integer `multipleOf`
//! as a remainder automaton.

use regex_automata::util::primitives::StateID;

use super::super::{decimal, regex};
use super::{Built, Lowerer};
use crate::schema::{NumberRule, SchemaError};

impl Lowerer<'_> {
    pub(super) fn number(&mut self, rule: &NumberRule, next: StateID) -> Built {
        if let Some(m) = rule.multiple_of {
            return self.multiple_of_rule(rule, m, next);
        }
        let bounded = rule.minimum.is_some() || rule.maximum.is_some();
        let source = if !bounded {
            if rule.integer {
                r"(?:0|-?[1-9][0-9]{0,17})".to_string()
            } else {
                r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][+-]?[1-9][0-9]?)?".to_string()
            }
        } else {
            let too_big = || SchemaError::inexact("minimum", &self.at, "bounds beyond ±1e30 are not supported");
            let lo = match rule.minimum {
                None => None,
                Some(b) => Some(integer_bound(b.value, b.exclusive, true).ok_or_else(too_big)?),
            };
            let hi = match rule.maximum {
                None => None,
                Some(b) => Some(integer_bound(b.value, b.exclusive, false).ok_or_else(too_big)?),
            };
            if rule.integer {
                let lo = lo.map(|(v, e)| if e { v + 1 } else { v });
                let hi = hi.map(|(v, e)| if e { v - 1 } else { v });
                match integer_range(lo, hi) {
                    Some(re) => re,
                    None => return Ok(None),
                }
            } else {
                let bound = |b: Option<crate::schema::Bound>| b.map(|b| (b.value, b.exclusive));
                match decimal::range(bound(rule.minimum), bound(rule.maximum)) {
                    Ok(Some(re)) => re,
                    Ok(None) => return Ok(None),
                    Err(why) => return Err(SchemaError::inexact("minimum", &self.at, why)),
                }
            }
        };
        let hir = regex::parse(&source).map_err(|e| SchemaError::too_large(&self.at, e))?;
        self.hir(&hir, next)
    }

    /// Integers that are multiples of `m`: a remainder automaton, unrolled to
    /// at most 18 digits.
    pub(super) fn multiple_of(&mut self, m: u64, next: StateID) -> Built {
        const DIGITS: usize = 18;
        let m = m as usize;
        if m > 10_000 {
            return Err(SchemaError::inexact("multipleOf", &self.at, "divisors above 10,000 are not supported"));
        }
        // layer[r]: having read k digits with remainder r; built from the last layer back.
        let mut layer: Vec<Option<StateID>> = (0..m).map(|r| (r == 0).then_some(next)).collect();
        for _ in 1..DIGITS {
            let mut prev = Vec::with_capacity(m);
            for r in 0..m {
                let mut alts = Vec::new();
                if r == 0 {
                    alts.push(next);
                }
                for d in 0..10u8 {
                    if let Some(target) = layer[(r * 10 + d as usize) % m] {
                        alts.push(self.range(b'0' + d, b'0' + d, target)?);
                    }
                }
                prev.push(if alts.is_empty() { None } else { Some(self.union(alts)?) });
            }
            layer = prev;
        }
        let mut firsts = vec![self.lit(b"0", next)?];
        for d in 1..10u8 {
            if let Some(target) = layer[d as usize % m] {
                firsts.push(self.range(b'0' + d, b'0' + d, target)?);
            }
        }
        // "-0" is excluded: serde_json reads it as the float -0.0, which
        // draft-04 validators do not count as an integer.
        let nonzero = self.union(firsts[1..].to_vec())?;
        let minus = self.range(b'-', b'-', nonzero)?;
        let digits = self.union(firsts)?;
        Ok(Some(self.union(vec![digits, minus])?))
    }
}

/// A bound rounded inwards to an integer: `(value, exclusive)`.
pub(super) fn integer_bound(v: f64, exclusive: bool, is_min: bool) -> Option<(i128, bool)> {
    if !v.is_finite() || v.abs() > 1e30 {
        return None;
    }
    if v.fract() == 0.0 {
        return Some((v as i128, exclusive));
    }
    // Non-integer bound: the nearest integer inside the range, inclusive.
    // For integers this is exact; for decimals it admits a subset.
    Some(((if is_min { v.ceil() } else { v.floor() }) as i128, false))
}

/// Regex for integers in `[lo, hi]` (either side may be open).
fn integer_range(lo: Option<i128>, hi: Option<i128>) -> Option<String> {
    if let (Some(l), Some(h)) = (lo, hi) {
        if l > h {
            return None;
        }
    }
    let mut alts = Vec::new();
    // Non-negative part.
    if hi.is_none_or(|h| h >= 0) {
        let from = lo.map_or(0, |l| l.max(0)) as u128;
        alts.push(regex::uint_range(from, hi.map(|h| h as u128)));
    }
    // Negative part: -m with m in [max(1, -hi), -lo].
    if lo.is_none_or(|l| l < 0) {
        let from = hi.map_or(1, |h| (-h).max(1)) as u128;
        alts.push(format!("-{}", regex::uint_range(from, lo.map(|l| (-l) as u128))));
    }
    Some(format!("(?:{})", alts.join("|")))
}

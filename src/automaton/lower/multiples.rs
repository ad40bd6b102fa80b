//! `multipleOf`, integer or decimal, with or without bounds.
//!
//! The semantics are decimal: `x` is a multiple of `m` when `x / m` is an
//! integer in exact decimal arithmetic over the numbers as written. This is
//! what the `jsonschema` crate computes for the numbers strictly emits (it
//! divides the shortest round-trip decimal forms of the two `f64`s, exactly),
//! and every number emitted here has at most 15 significant digits, so its
//! text is that form and reads back as itself: `0.3` is a multiple of `0.1`.
//!
//! - Between two bounds, the multiples are listed (at most
//!   [`MAX_LISTED_MULTIPLES`]) and emitted in their one canonical spelling
//!   (`2.5`, never `2.50` or `25e-1`).
//! - Without bounds, an integer divisor is a remainder automaton over the
//!   digits (see `numbers.rs`); integers under a decimal divisor are the
//!   multiples of an integer (`x` integral and `x / 2.5` integral is `x`
//!   a multiple of 5).
//! - Anything else (a decimal divisor over decimals with one bound or none,
//!   too many multiples, more than 15 digits) is refused with the pointer.

use regex_automata::util::primitives::StateID;

use super::{Built, Lowerer};
use crate::schema::{decimal_parts, Bound, NumberRule, SchemaError};

/// Bounded ranges with more multiples than this are refused as too large.
const MAX_LISTED_MULTIPLES: i128 = 20_000;
/// Emitted multiples stay below this magnitude in units of their last
/// decimal place (15 significant digits: exact in `f64`).
const MAX_DIGITS_VALUE: i128 = 1_000_000_000_000_000;

impl Lowerer<'_> {
    /// A number rule with `multipleOf` (`multiple × 10^-places`).
    pub(super) fn multiple_of_rule(&mut self, rule: &NumberRule, multiple: u64, next: StateID) -> Built {
        let places = rule.decimal_places;
        let refuse = |why: &str| Err(SchemaError::inexact("multipleOf", &self.at, why));
        if i128::from(multiple) >= MAX_DIGITS_VALUE {
            return refuse("divisors with more than 15 significant digits are not supported");
        }
        match (rule.minimum, rule.maximum) {
            (Some(lo), Some(hi)) => self.multiples_between(rule, multiple, lo, hi, next),
            (None, None) if places == 0 => self.multiple_of(multiple, next),
            (None, None) if rule.integer => {
                // Integers x with x × 10^places ≡ 0 (mod multiple).
                let pow = 10u64.pow(places);
                let m = multiple / gcd(multiple, pow);
                if m <= 1 {
                    let integers = NumberRule { integer: true, ..NumberRule::default() };
                    return self.number(&integers, next);
                }
                self.multiple_of(m, next)
            }
            (None, None) => refuse("`multipleOf` with a decimal divisor over decimals needs both `minimum` and `maximum`"),
            _ => refuse("`multipleOf` with only one bound is not supported"),
        }
    }

    /// The multiples `n × multiple × 10^-places` within both bounds, listed.
    fn multiples_between(&mut self, rule: &NumberRule, multiple: u64, lo: Bound, hi: Bound, next: StateID) -> Built {
        let places = rule.decimal_places;
        let at = self.at.clone();
        let too_precise =
            || SchemaError::inexact("minimum", &at, "bounds beside `multipleOf` with more than 15 significant digits are not supported");
        let (lo_m, lo_p) = decimal_parts(lo.value).filter(|&(_, p)| p <= 15).ok_or_else(too_precise)?;
        let (hi_m, hi_p) = decimal_parts(hi.value).filter(|&(_, p)| p <= 15).ok_or_else(too_precise)?;
        // Everything over one scale: 10^-scale.
        let scale = places.max(lo_p).max(hi_p);
        let up = |v: i128, p: u32| 10i128.checked_pow(scale - p).and_then(|s| v.checked_mul(s));
        let (Some(step), Some(lo_v), Some(hi_v)) = (up(i128::from(multiple), places), up(lo_m, lo_p), up(hi_m, hi_p)) else {
            return Err(too_precise());
        };
        // n from the smallest to the largest multiple within the bounds.
        let first = if lo.exclusive { lo_v.div_euclid(step) + 1 } else { -((-lo_v).div_euclid(step)) };
        let last = if hi.exclusive { -((-hi_v).div_euclid(step)) - 1 } else { hi_v.div_euclid(step) };
        if first > last {
            return Ok(None);
        }
        if last - first >= MAX_LISTED_MULTIPLES {
            return Err(SchemaError::too_large(
                &self.at,
                format!("`multipleOf` within these bounds has more than {MAX_LISTED_MULTIPLES} values"),
            ));
        }
        let pow = 10i128.pow(scale);
        let mut texts = Vec::new();
        for n in first..=last {
            let v = n * step;
            if v.abs() >= MAX_DIGITS_VALUE {
                return Err(too_precise());
            }
            if rule.integer && v % pow != 0 {
                continue;
            }
            texts.push(spell(v, scale));
        }
        self.literals(texts, next)
    }
}

/// `v × 10^-scale` in its one canonical spelling: no exponent, no trailing
/// zeros after the point, no point for an integer, `0` never negative.
fn spell(v: i128, scale: u32) -> String {
    let pow = 10i128.pow(scale);
    let (int, frac) = (v.abs() / pow, v.abs() % pow);
    let sign = if v < 0 { "-" } else { "" };
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let digits = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{int}.{}", digits.trim_end_matches('0'))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

//! Decimals between bounds that need not be integers (`minimum: 0.1`,
//! `exclusiveMaximum: 2.75`), as a regex, exactly as a validator reading the
//! text into an `f64` judges them.
//!
//! A bound is written as its shortest decimal (`0.1`), and a number as an
//! integer part and a fraction. At the integer part a bound shares, the
//! fraction is compared digit by digit with the bound's. Two rules keep the
//! comparison honest under `f64` rounding, which is monotone: a number at
//! least the decimal of an inclusive bound reads as at least the bound, but
//! a number a hair above an exclusive bound could read as equal to it. So
//! fractions are cut at [`MAX_SIGNIFICANT`] significant digits in all, which
//! keeps every emitted number at least one unit of its last digit away from
//! an exclusive bound, more than half an `f64` ulp; and exclusive bounds at
//! or beyond 2^53, where neighbouring integers read alike, are refused.
//! Cutting fractions admits a subset of the decimals, so it is sound.

use super::regex::uint_range;

/// Integer and fraction digits an emitted number has at most next to a bound.
const MAX_SIGNIFICANT: usize = 15;
/// Fraction digits past the longer bound's, before the cut.
const EXTRA_DIGITS: usize = 6;

/// A non-negative decimal bound: integer part, fraction digits without
/// trailing zeros, and whether the bound itself is excluded.
#[derive(Debug, Clone, PartialEq)]
struct Dec {
    int: u128,
    frac: Vec<u8>,
    exclusive: bool,
}

impl Dec {
    /// `|v|` as its shortest decimal; `None` past ±1e30 or not finite.
    fn of(v: f64, exclusive: bool) -> Option<Self> {
        if !v.is_finite() || v.abs() > 1e30 {
            return None;
        }
        let text = format!("{}", v.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let frac: Vec<u8> = frac.trim_end_matches('0').bytes().map(|b| b - b'0').collect();
        Some(Self { int: int.parse().ok()?, frac, exclusive })
    }
    fn zero(exclusive: bool) -> Self {
        Self { int: 0, frac: Vec::new(), exclusive }
    }
    /// Compares values (not exclusivity).
    fn cmp_value(&self, other: &Self) -> std::cmp::Ordering {
        self.int.cmp(&other.int).then_with(|| self.frac.cmp(&other.frac))
    }
}

/// Regex for the decimals `x` with `lo ≤ x ≤ hi` (either side open; each
/// bound `(value, exclusive)`), or `Ok(None)` when none lies in between.
///
/// # Errors
/// A reason when a bound is beyond ±1e30, or exclusive at or beyond 2^53.
pub(crate) fn range(lo: Option<(f64, bool)>, hi: Option<(f64, bool)>) -> Result<Option<String>, String> {
    for (v, exclusive) in lo.iter().chain(hi.iter()) {
        if !v.is_finite() || v.abs() > 1e30 {
            return Err("bounds beyond ±1e30 are not supported".into());
        }
        if *exclusive && v.abs() >= 9_007_199_254_740_992.0 {
            return Err("exclusive bounds at or beyond 2^53 cannot be told apart from their neighbours".into());
        }
    }
    let mut alts = Vec::new();
    // Non-negative side: [max(lo, 0), hi].
    let positive = hi.is_none_or(|(h, excl)| h > 0.0 || (h == 0.0 && !excl));
    if positive {
        let from = match lo {
            Some((l, excl)) if l >= 0.0 => Dec::of(l, excl).expect("checked"),
            _ => Dec::zero(false),
        };
        let to = hi.map(|(h, excl)| Dec::of(h, excl).expect("checked"));
        alts.extend(magnitude(&from, to.as_ref()));
    }
    // Negative side: x = -m, m > 0, -hi ≤ m ≤ -lo.
    if lo.is_none_or(|(l, _)| l < 0.0) {
        let from = match hi {
            Some((h, excl)) if h < 0.0 => Dec::of(h, excl).expect("checked"),
            _ => Dec::zero(true),
        };
        let to = lo.map(|(l, excl)| Dec::of(l, excl).expect("checked"));
        alts.extend(magnitude(&from, to.as_ref()).map(|m| format!("-{m}")));
    }
    Ok((!alts.is_empty()).then(|| format!("(?:{})", alts.join("|"))))
}

/// Unsigned decimals `i(.f)?` between the bounds.
fn magnitude(lo: &Dec, hi: Option<&Dec>) -> Option<String> {
    let mut alts = Vec::new();
    match hi {
        Some(hi) => {
            match lo.cmp_value(hi) {
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Equal if lo.exclusive || hi.exclusive => return None,
                _ => {}
            }
            if lo.int == hi.int {
                return fraction(lo.int, Some(lo), Some(hi)).map(|t| format!("{}{t}", lo.int));
            }
            alts.extend(fraction(lo.int, Some(lo), None).map(|t| format!("{}{t}", lo.int)));
            if lo.int + 1 < hi.int {
                // Below an exclusive bound, fractions are cut (see the module docs).
                let tail = if hi.exclusive { cut_fraction(hi.int) } else { r"(?:\.[0-9]+)?".to_string() };
                alts.push(format!("{}{tail}", uint_range(lo.int + 1, Some(hi.int - 1))));
            }
            alts.extend(fraction(hi.int, None, Some(hi)).map(|t| format!("{}{t}", hi.int)));
        }
        None => {
            alts.extend(fraction(lo.int, Some(lo), None).map(|t| format!("{}{t}", lo.int)));
            alts.push(format!(r"{}(?:\.[0-9]+)?", uint_range(lo.int + 1, None)));
        }
    }
    (!alts.is_empty()).then(|| format!("(?:{})", alts.join("|")))
}

fn digits(int: u128) -> usize {
    int.to_string().len()
}

/// An optional fraction of at most the digits the cut leaves beside `int`.
fn cut_fraction(int: u128) -> String {
    match MAX_SIGNIFICANT.saturating_sub(digits(int)) {
        0 => String::new(),
        n => format!(r"(?:\.[0-9]{{1,{n}}})?"),
    }
}

/// Tight comparison with a bound's remaining fraction digits.
type Tight<'a> = Option<(&'a [u8], bool)>;

/// The part after integer part `int` (empty, or `.` and digits) such that
/// the number lies within the bounds that share that integer part.
fn fraction(int: u128, lo: Option<&Dec>, hi: Option<&Dec>) -> Option<String> {
    let longest = lo.map_or(0, |d| d.frac.len()).max(hi.map_or(0, |d| d.frac.len()));
    let max = (longest + EXTRA_DIGITS).min(MAX_SIGNIFICANT.saturating_sub(digits(int)));
    let lo = lo.map(|d| (d.frac.as_slice(), d.exclusive));
    let hi = hi.map(|d| (d.frac.as_slice(), d.exclusive));
    let (empty, more) = fraction_digits(lo, hi, 0, max);
    match (empty, more) {
        (false, None) => None,
        (true, None) => Some(String::new()),
        (false, Some(m)) => Some(format!(r"\.{m}")),
        (true, Some(m)) => Some(format!(r"(?:\.{m})?")),
    }
}

/// For fraction digits read so far (`depth` of them, still equal to the
/// bounds that are `Some`): whether the number may end here, and a regex
/// for the non-empty digit strings that may follow.
fn fraction_digits(lo: Tight, hi: Tight, depth: usize, max: usize) -> (bool, Option<String>) {
    let may_end = lo.is_none_or(|(rest, excl)| rest.is_empty() && !excl) && hi.is_none_or(|(rest, excl)| !rest.is_empty() || !excl);
    if depth >= max {
        return (may_end, None);
    }
    if lo.is_none() && hi.is_none() {
        return (may_end, Some(format!("[0-9]{{1,{}}}", max - depth)));
    }
    // Digits grouped by the state they lead to.
    let step = |d: u8| -> Option<(Tight, Tight)> {
        let next_lo = match lo {
            None => None,
            Some((rest, excl)) => {
                let l = rest.first().copied().unwrap_or(0);
                if d < l {
                    return None;
                }
                (d == l).then(|| (rest.get(1..).unwrap_or(&[]), excl))
            }
        };
        let next_hi = match hi {
            None => None,
            Some((rest, excl)) => {
                let h = rest.first().copied().unwrap_or(0);
                if d > h {
                    return None;
                }
                (d == h).then(|| (rest.get(1..).unwrap_or(&[]), excl))
            }
        };
        Some((next_lo, next_hi))
    };
    let mut alts = Vec::new();
    let mut d = 0u8;
    while d <= 9 {
        let Some(next) = step(d) else {
            d += 1;
            continue;
        };
        let mut end = d;
        while end < 9 && step(end + 1) == Some(next) {
            end += 1;
        }
        let class = if d == end { format!("{d}") } else { format!("[{d}-{end}]") };
        let (empty, more) = fraction_digits(next.0, next.1, depth + 1, max);
        match (empty, more) {
            (false, None) => {}
            (true, None) => alts.push(class),
            (false, Some(m)) => alts.push(format!("{class}{m}")),
            (true, Some(m)) => alts.push(format!("{class}(?:{m})?")),
        }
        d = end + 1;
    }
    (may_end, (!alts.is_empty()).then(|| format!("(?:{})", alts.join("|"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(re: &str) -> regex_automata::meta::Regex {
        regex_automata::meta::Regex::new(&format!("^{re}$")).unwrap()
    }

    /// Every decimal with up to 3 fraction digits in [-3, 3], judged by `f64`.
    fn check(lo: Option<(f64, bool)>, hi: Option<(f64, bool)>) {
        let re = range(lo, hi).unwrap().map(|r| full(&r));
        for n in -3000i32..=3000 {
            for text in [format!("{}", n as f64 / 1000.0), format!("{:.3}", n as f64 / 1000.0)] {
                let x: f64 = text.parse().unwrap();
                let ok = lo.is_none_or(|(l, e)| x > l || (x == l && !e)) && hi.is_none_or(|(h, e)| x < h || (x == h && !e));
                let text = if text.starts_with("-0") && x == 0.0 { continue } else { text };
                let matched = re.as_ref().is_some_and(|re| re.is_match(&text));
                assert_eq!(matched, ok, "{text} in {lo:?}..{hi:?}");
            }
        }
    }

    #[test]
    fn decimal_bounds_are_exact() {
        check(Some((0.1, false)), Some((0.2, false)));
        check(Some((0.1, true)), Some((0.2, true)));
        check(Some((-1.25, false)), Some((2.5, true)));
        check(Some((-2.05, true)), None);
        check(None, Some((-0.5, false)));
        check(Some((1.0, true)), Some((1.5, false)));
        check(Some((0.0, true)), Some((0.001, false)));
        check(Some((0.3, false)), Some((0.3, false)));
        check(Some((0.3, true)), Some((0.3, false)));
    }

    #[test]
    fn exclusive_bounds_keep_a_gap_f64_can_see() {
        let re = full(&range(Some((0.1, true)), None).unwrap().unwrap());
        // 0.1 plus 1e-20 reads as 0.1, which the bound excludes.
        assert!(!re.is_match("0.10000000000000000001"));
        assert!(re.is_match("0.1000001"));
        assert!(range(Some((1e17, true)), None).is_err());
    }
}

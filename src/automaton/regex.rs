//! Regexes inside JSON strings that are not patterns: numeric ranges. (Patterns are read in
//! [`crate::pattern`]; formats carry their regex, [`crate::schema::Format::regex`].)

pub(crate) use crate::pattern::{branches, char_len, ecma_to_rust, full_match, parse};

/// Regex for decimal strings (no sign, no leading zeros) of the integers in
/// `[lo, hi]`; `hi == None` means up to 18 digits.
pub(crate) fn uint_range(lo: u128, hi: Option<u128>) -> String {
    const MAX_DIGITS: usize = 18;
    let mut alts = Vec::new();
    let hi_limit = hi.unwrap_or(10u128.pow(MAX_DIGITS as u32) - 1);
    if lo > hi_limit {
        return String::from(r"[^\x{0}-\x{10FFFF}]");
    }
    let mut start = lo;
    while start <= hi_limit {
        let digits = start.to_string().len();
        let end_of_len = 10u128.pow(digits as u32) - 1;
        let end = end_of_len.min(hi_limit);
        alts.push(same_len(&start.to_string(), &end.to_string()));
        start = end + 1;
    }
    format!("(?:{})", alts.join("|"))
}

/// Digit strings of one length between `a` and `b` inclusive.
fn same_len(a: &str, b: &str) -> String {
    if a.is_empty() {
        return String::new();
    }
    let (a0, b0) = (a.as_bytes()[0], b.as_bytes()[0]);
    let (ar, br) = (&a[1..], &b[1..]);
    if a0 == b0 {
        return format!("{}{}", a0 as char, same_len(ar, br));
    }
    let n = ar.len();
    let any = |n: usize| if n == 0 { String::new() } else { format!("[0-9]{{{n}}}") };
    if ar.bytes().all(|c| c == b'0') && br.bytes().all(|c| c == b'9') {
        return format!("[{}-{}]{}", a0 as char, b0 as char, any(n));
    }
    let mut alts = vec![format!("{}{}", a0 as char, same_len(ar, &"9".repeat(n)))];
    if a0 + 1 < b0 {
        alts.push(format!("[{}-{}]{}", (a0 + 1) as char, (b0 - 1) as char, any(n)));
    }
    alts.push(format!("{}{}", b0 as char, same_len(&"0".repeat(n), br)));
    format!("(?:{})", alts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(re: &str) -> regex_automata::meta::Regex {
        regex_automata::meta::Regex::new(&format!("^(?:{re})$")).unwrap()
    }

    #[test]
    fn uint_range_matches_exactly_the_range() {
        for (lo, hi) in [(0, 0), (0, 9), (3, 47), (10, 10), (95, 1234), (0, 1000), (7, 7000)] {
            let re = full(&uint_range(lo, Some(hi)));
            for x in 0..=hi + 200 {
                assert_eq!(re.is_match(&x.to_string()), x >= lo && x <= hi, "{x} in [{lo},{hi}]");
            }
            assert!(!re.is_match("007"));
        }
    }
}

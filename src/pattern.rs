//! ECMA-262 `pattern`s, read once for both passes: the schema reader and merger ask whether a
//! pattern is supported and whether a name matches it, and the automaton lowers the same HIR.
//!
//! Patterns are parsed with `regex-syntax` after a small ECMA-to-Rust translation of the
//! constructs whose meaning differs (`\d`, `\w`, `\s`, `.`).

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition};

/// Translates the ECMA-262 constructs whose meaning differs in `regex-syntax`.
pub(crate) fn ecma_to_rust(pattern: &str) -> Result<String, String> {
    const SPACE: &str = r"\t\n\x0B\x0C\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    // In a class: whether the last item is a single character that a `-` would make the start
    // of a range, and whether a `-` has just done so (ECMA reads `"--` as the range `"`-`-`,
    // where regex-syntax would read `--` as a set operation).
    let (mut range_start, mut in_range) = (false, false);
    let atom = |range_start: &mut bool, in_range: &mut bool| {
        *range_start = !*in_range;
        *in_range = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else { return Err("trailing backslash".into()) };
                let (plain, negated) = match e {
                    'd' => ("0-9", false),
                    'D' => ("0-9", true),
                    'w' => ("0-9A-Za-z_", false),
                    'W' => ("0-9A-Za-z_", true),
                    's' => (SPACE, false),
                    'S' => (SPACE, true),
                    '/' => {
                        out.push('/');
                        continue;
                    }
                    c if c.is_ascii_digit() && c != '0' => return Err("backreferences are not regular".into()),
                    'b' | 'B' if !in_class => return Err("word boundaries are not supported".into()),
                    'c' => {
                        let Some(letter) = chars.next().filter(char::is_ascii_alphabetic) else {
                            return Err("malformed `\\c` escape".into());
                        };
                        out.push_str(&format!("\\x{:02X}", (letter as u8) % 32));
                        continue;
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                        // `\uXXXX`, `\u{...}` and `\xHH` are one character.
                        let hex = match other {
                            'u' if chars.peek() == Some(&'{') => usize::MAX,
                            'u' => 4,
                            'x' => 2,
                            _ => 0,
                        };
                        if hex == usize::MAX {
                            for h in chars.by_ref() {
                                out.push(h);
                                if h == '}' {
                                    break;
                                }
                            }
                        } else {
                            for _ in 0..hex {
                                match chars.peek() {
                                    Some(h) if h.is_ascii_hexdigit() => out.push(chars.next().unwrap_or('0')),
                                    _ => break,
                                }
                            }
                        }
                        if in_class {
                            atom(&mut range_start, &mut in_range);
                        }
                        continue;
                    }
                };
                (range_start, in_range) = (false, false);
                match (in_class, negated) {
                    (true, false) => out.push_str(plain),
                    _ => out.push_str(&format!("[{}{}]", if negated { "^" } else { "" }, plain)),
                }
            }
            '[' if !in_class => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                    if chars.peek() == Some(&']') {
                        chars.next();
                        out.push_str(r"[\x{0}-\x{10FFFF}]");
                        continue;
                    }
                    out.push_str("[^");
                } else {
                    if chars.peek() == Some(&']') {
                        return Err("the empty class `[]` matches nothing".into());
                    }
                    out.push('[');
                }
                in_class = true;
                (range_start, in_range) = (false, false);
            }
            '[' => out.push_str(r"\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '.' if !in_class => out.push_str(r"[^\n\r\x{2028}\x{2029}]"),
            '(' if !in_class && chars.peek() == Some(&'?') => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<=") || rest.starts_with("?<!") {
                    return Err("lookaround is not regular".into());
                }
                out.push('(');
            }
            '-' if in_class && chars.peek() == Some(&'-') && range_start => {
                // `x--`: a range from `x` to `-`.
                chars.next();
                out.push_str("-\\-");
                (range_start, in_range) = (false, false);
            }
            '&' | '~' | '-' if in_class && chars.peek() == Some(&c) => {
                // regex-syntax reads `&&`, `~~` and `--` in classes as set operations.
                out.push('\\');
                out.push(c);
                atom(&mut range_start, &mut in_range);
            }
            '-' if in_class && range_start && chars.peek().is_some_and(|&n| n != ']') => {
                out.push('-');
                (range_start, in_range) = (false, true);
            }
            c => {
                out.push(c);
                if in_class {
                    atom(&mut range_start, &mut in_range);
                }
            }
        }
    }
    Ok(out)
}

/// Parses a regex (Rust syntax) into HIR.
pub(crate) fn parse(regex: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(true)
        .utf8(true)
        .nest_limit(100)
        .build()
        .parse(regex)
        .map_err(|e| e.to_string().lines().last().unwrap_or("parse error").trim().to_string())
}

/// A pattern split into the branches of its top-level alternation, each with
/// its anchors removed and noted. An unanchored side matches any text.
pub(crate) struct Branch {
    pub hir: Hir,
    pub anchored_start: bool,
    pub anchored_end: bool,
}

/// Splits a pattern HIR into anchored branches; lookarounds elsewhere are errors.
pub(crate) fn branches(hir: &Hir) -> Result<Vec<Branch>, String> {
    let alternatives: Vec<Hir> = match hir.kind() {
        HirKind::Alternation(alts) => alts.clone(),
        _ => vec![hir.clone()],
    };
    alternatives.into_iter().map(strip_anchors).collect()
}

fn strip_anchors(hir: Hir) -> Result<Branch, String> {
    let mut parts: Vec<Hir> = match hir.kind() {
        HirKind::Concat(parts) => parts.clone(),
        _ => vec![hir],
    };
    let is = |h: &Hir, look: Look| matches!(h.kind(), HirKind::Look(l) if *l == look);
    let anchored_start = parts.first().is_some_and(|h| is(h, Look::Start));
    if anchored_start {
        parts.remove(0);
    }
    let anchored_end = parts.last().is_some_and(|h| is(h, Look::End));
    if anchored_end {
        parts.pop();
    }
    let hir = Hir::concat(parts);
    if !hir.properties().look_set().is_empty() {
        return Err("anchors or boundaries inside the pattern are not supported".into());
    }
    Ok(Branch { hir, anchored_start, anchored_end })
}

/// A pattern as one HIR that matches whole strings: an unanchored side of a
/// branch matches any text there.
pub(crate) fn full_match(pattern: &str) -> Result<Hir, String> {
    let hir = parse(&ecma_to_rust(pattern)?)?;
    let any = Hir::repetition(Repetition {
        min: 0,
        max: None,
        greedy: true,
        sub: Box::new(Hir::class(Class::Unicode(ClassUnicode::new([ClassUnicodeRange::new('\0', char::MAX)])))),
    });
    let mut alternatives = Vec::new();
    for branch in branches(&hir)? {
        let mut parts = Vec::new();
        if !branch.anchored_start {
            parts.push(any.clone());
        }
        parts.push(branch.hir);
        if !branch.anchored_end {
            parts.push(any.clone());
        }
        alternatives.push(Hir::concat(parts));
    }
    Ok(Hir::alternation(alternatives))
}

/// Whether a string matches an ECMA-262 pattern (unanchored), read the way
/// the lowering reads it.
pub(crate) fn pattern_matches(pattern: &str, text: &str) -> Result<bool, String> {
    let regex = regex_automata::meta::Regex::new(&ecma_to_rust(pattern)?).map_err(|e| e.to_string())?;
    Ok(regex.is_match(text))
}

/// Bounds on the number of characters a HIR matches.
pub(crate) fn char_len(hir: &Hir) -> (usize, Option<usize>) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => (0, Some(0)),
        HirKind::Literal(lit) => {
            let n = String::from_utf8_lossy(&lit.0).chars().count();
            (n, Some(n))
        }
        HirKind::Class(_) => (1, Some(1)),
        HirKind::Capture(c) => char_len(&c.sub),
        HirKind::Repetition(r) => {
            let (lo, hi) = char_len(&r.sub);
            let min = lo.saturating_mul(r.min as usize);
            let max = match (hi, r.max) {
                (Some(0), _) => Some(0),
                (Some(h), Some(m)) => Some(h.saturating_mul(m as usize)),
                _ => None,
            };
            (min, max)
        }
        HirKind::Concat(parts) => parts
            .iter()
            .map(char_len)
            .fold((0, Some(0)), |(a, b), (c, d)| (a.saturating_add(c), b.zip(d).map(|(x, y)| x.saturating_add(y)))),
        HirKind::Alternation(alts) => {
            let lens: Vec<_> = alts.iter().map(char_len).collect();
            let min = lens.iter().map(|l| l.0).min().unwrap_or(0);
            let max = lens.iter().try_fold(0usize, |m, l| l.1.map(|x| m.max(x)));
            (min, max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecma_classes_are_ascii() {
        let re = regex_automata::meta::Regex::new(&format!("^(?:{})$", ecma_to_rust(r"\d+\.\w").unwrap())).unwrap();
        assert!(re.is_match("12.a"));
        assert!(!re.is_match("١٢.a"));
        assert!(ecma_to_rust("(?=a)").is_err());
    }

    #[test]
    fn a_pattern_matches_anywhere_unless_anchored() {
        assert_eq!(pattern_matches("b+", "abba"), Ok(true));
        assert_eq!(pattern_matches("^b+", "abba"), Ok(false));
        assert!(full_match("^a$|b").is_ok());
    }
}

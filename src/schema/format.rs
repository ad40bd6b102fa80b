//! The values strictly produces for each supported `format`, as a regex.

use super::Format;

/// Regexes for the supported `format`s. Each matches a subset of what RFC
/// 3339 / 5321 / 4122 / 2673 / 4291 / 3986 / 1123 allow, chosen so that
/// every match is valid: strictly only ever needs to produce valid values.
impl Format {
    /// The regex (Rust syntax, matched whole) of the values strictly produces for this format.
    pub fn regex(self) -> &'static str {
        use Format::*;
        match self {
            DateTime => concat!(
                r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))",
                r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)",
                r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
            ),
            Date => concat!(
                r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))",
                r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
            ),
            Time => r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
            Email => r"[a-z0-9]{1,16}(?:[._+-][a-z0-9]{1,16}){0,2}@(?:[a-z0-9]{1,16}(?:-[a-z0-9]{1,16})?\.){1,3}[a-z]{2,8}",
            Uuid => r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            Ipv4 => r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}",
            Ipv6 => concat!(
                r"(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,7}:|(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}",
                r"|(?:[0-9a-f]{1,4}:){1,5}(?::[0-9a-f]{1,4}){1,2}|(?:[0-9a-f]{1,4}:){1,4}(?::[0-9a-f]{1,4}){1,3}",
                r"|(?:[0-9a-f]{1,4}:){1,3}(?::[0-9a-f]{1,4}){1,4}|(?:[0-9a-f]{1,4}:){1,2}(?::[0-9a-f]{1,4}){1,5}",
                r"|[0-9a-f]{1,4}:(?::[0-9a-f]{1,4}){1,6}|:(?:(?::[0-9a-f]{1,4}){1,7}|:))"
            ),
            Uri => {
                r"(?:https?|ftp|urn|mailto|file)://[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,3}(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]{0,40}){0,8}(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]{0,60})?"
            }
            Hostname => r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?){0,3}",
            UriReference => Uri.regex(),
            JsonPointer => r"(?:/[A-Za-z0-9._-]{0,40}){0,8}",
            Regex => r"[A-Za-z0-9_ ]{0,40}",
            Duration => r"P(?:[1-9][0-9]{0,3}[YMWD]|T[1-9][0-9]{0,3}[HMS]|[1-9][0-9]{0,3}DT[1-9][0-9]{0,3}[HMS])",
        }
    }
}

impl super::StringRule {
    /// Whether `s` is in the language strictly enforces for this rule: its length in
    /// characters within bounds, not an excluded value, its pattern matched (read as the
    /// automaton reads it, [`crate::pattern::full_match`]) and its format's regex matched
    /// whole. Used to filter `enum` values and property names against sibling keywords; the
    /// errors are those the lowering would raise for the same pattern.
    pub fn admits(&self, s: &str) -> Result<bool, super::SchemaError> {
        let chars = s.chars().count();
        if chars < self.min_len || self.max_len.is_some_and(|max| chars > max) || self.excluded.iter().any(|e| e == s) {
            return Ok(false);
        }
        if let Some((pattern, at)) = &self.pattern {
            let hir = crate::pattern::full_match(pattern).map_err(|e| super::SchemaError::inexact("pattern", at, e))?;
            if !whole_match(hir, s) {
                return Ok(false);
            }
        }
        if let Some(format) = self.format {
            let hir = crate::pattern::parse(format.regex()).expect("the format regexes parse");
            if !whole_match(hir, s) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Whether `hir` matches all of `s`.
fn whole_match(hir: regex_syntax::hir::Hir, s: &str) -> bool {
    use regex_syntax::hir::{Hir, Look};
    let whole = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    regex_automata::meta::Builder::new().build_from_hir(&whole).is_ok_and(|re| re.is_match(s))
}

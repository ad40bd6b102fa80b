//! Strings: lengths in code points, patterns, formats and escapes, against
//! the `jsonschema` crate, at the byte level (`tests/oracle`) and through the
//! token mask over a small hand-made vocabulary (`tests/token_oracle`).

use crate::token_oracle;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;
use token_oracle::check;

#[test]
fn lengths_count_code_points_not_bytes() {
    check(
        json!({"type": "string", "minLength": 2, "maxLength": 3}),
        &["\"ab", "é", "日本", "\\n", "\\u00e9"],
        &[json!("ab"), json!("abc"), json!("é日"), json!("日本語"), json!("a\n"), json!("\"\\")],
        &[json!(""), json!("a"), json!("é"), json!("abcd"), json!("日本語x"), json!(12), json!(null)],
    );
}

#[test]
fn max_length_zero_admits_only_the_empty_string() {
    check(json!({"type": "string", "maxLength": 0}), &["\"\""], &[json!("")], &[json!("a"), json!(" "), json!("é"), json!(false)]);
}

#[test]
fn anchored_pattern_is_the_whole_string() {
    check(
        json!({"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"}),
        &["ab", "-1", "12\""],
        &[json!("ab-12"), json!("x-00"), json!("abc-99")],
        &[json!("ab-1"), json!("AB-12"), json!("ab-123"), json!("-12"), json!("ab12"), json!(7)],
    );
}

#[test]
fn unanchored_pattern_matches_anywhere() {
    check(
        json!({"type": "string", "pattern": "ab", "maxLength": 5}),
        &["ab", "\"ab\""],
        &[json!("ab"), json!("xaby"), json!("zzzab"), json!("abab")],
        &[json!(""), json!("ba"), json!("a b"), json!("xxxxab")],
    );
}

#[test]
fn pattern_and_lengths_intersect() {
    check(
        json!({"type": "string", "pattern": "^[0-9]+$", "minLength": 2, "maxLength": 3}),
        &["12", "345"],
        &[json!("00"), json!("123"), json!("99")],
        &[json!("1"), json!("1234"), json!("1a"), json!("")],
    );
}

#[test]
fn formats_date_email_uuid_and_ipv4() {
    check(
        json!({"type": "string", "format": "date"}),
        &["2024", "-02-", "29\""],
        &[json!("2024-02-29"), json!("1999-12-31"), json!("2023-01-01")],
        &[json!("2023-02-29"), json!("2024-13-01"), json!("2024-1-01"), json!("24-01-01"), json!("")],
    );
    check(
        json!({"type": "string", "format": "uuid"}),
        &["0000", "-0000"],
        &[json!("123e4567-e89b-12d3-a456-426614174000"), json!("00000000-0000-0000-0000-000000000000")],
        &[
            json!("123e4567e89b12d3a456426614174000"),
            json!("123e4567-e89b-12d3-a456-42661417400"),
            json!("g23e4567-e89b-12d3-a456-426614174000"),
        ],
    );
    check(
        json!({"type": "string", "format": "ipv4"}),
        &["192", ".168", "255"],
        &[json!("192.168.0.1"), json!("0.0.0.0"), json!("255.255.255.255")],
        &[json!("256.0.0.1"), json!("1.2.3"), json!("1.2.3.4.5"), json!("a.b.c.d")],
    );
    check(
        json!({"type": "string", "format": "email", "maxLength": 12}),
        &["@b", ".com"],
        &[json!("a@b.co"), json!("joe@mail.com")],
        &[json!("a@"), json!("@b.co"), json!("no-at-sign"), json!("a@b@c.co")],
    );
}

#[test]
fn enum_and_const_strings_with_escapes() {
    check(
        json!({"enum": ["a\"b", "tab\there", "é"]}),
        &["\\\"", "\\t", "\\u00e9"],
        &[json!("a\"b"), json!("tab\there"), json!("é")],
        &[json!("ab"), json!("a\\b"), json!("tab here"), json!("e")],
    );
}

#[test]
fn refused_string_schemas_name_keyword_and_pointer() {
    let e = Grammar::compile(
        &json!({"properties": {"s": {"type": "string", "format": "hostname-ish"}}}),
        &CompileOptions { unknown_keywords: strictly::schema::UnknownKeywords::Deny, ..CompileOptions::default() },
    )
    .unwrap_err();
    assert_eq!(e.keyword(), Some("format"), "{e}");
    assert_eq!(e.pointer(), "/properties/s", "{e}");
    let e = Grammar::compile(&json!({"properties": {"s": {"type": "string", "pattern": "(a"}}}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("pattern"), "{e}");
    assert!(e.pointer().starts_with("/properties/s"), "{e}");
    let e = Grammar::compile(&json!({"type": "string", "minLength": 3, "maxLength": 2}), &CompileOptions::default()).unwrap_err();
    assert!(e.to_string().contains("unsatisfiable"), "{e}");
}

#[test]
fn a_dash_after_a_range_start_in_a_class_ends_the_range_as_in_ecma() {
    // ECMA reads `"--` as the range `"`..`-` (0x22-0x2D); `\u00ad` after it is one character.
    // Read as `"`, then the range `-`..U+00AD, the class took `@`, `{` and backquote
    // (MaskBench Github_medium---o78738: random walks wrote them into a course name).
    check(
        json!({"type": "string", "pattern": "^[a\"--\u{00ad}]+$"}),
        &["a#", "-a"],
        &[json!("a"), json!("\"#$%&'()*+,-"), json!("a\u{00ad}"), json!("--")],
        &[json!("@"), json!("{"), json!("`"), json!("a.b"), json!("\u{00ac}"), json!("")],
    );
    check(json!({"type": "string", "pattern": "^[--0]+$"}), &[], &[json!("-"), json!("./0")], &[json!(","), json!("1")]);
    check(json!({"type": "string", "pattern": "^[\\u0041-\\u0043x-]+$"}), &[], &[json!("ABC"), json!("x-")], &[json!("D"), json!("y")]);
}

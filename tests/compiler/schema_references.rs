//! References: local `$ref` into `$defs` and `definitions`, a reference to
//! the root, `$ref` beside other keywords, recursion and its depth limit, and
//! what is refused (anchors, remote and dangling references), against the
//! `jsonschema` crate, at the byte level (`tests/oracle`) and through the
//! token mask over a small hand-made vocabulary (`tests/token_oracle`).

use crate::{oracle, token_oracle};
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;
use token_oracle::check;

#[test]
fn ref_into_defs_and_definitions() {
    check(
        json!({"$defs": {"pos": {"type": "integer", "minimum": 1}}, "type": "array", "items": {"$ref": "#/$defs/pos"}, "maxItems": 3}),
        &["[1", ",2", "1]"],
        &[json!([]), json!([1]), json!([3, 2, 1])],
        &[json!([0]), json!([1, -2]), json!(["1"]), json!([1, 2, 3, 4])],
    );
    check(
        json!({"definitions": {"code": {"type": "string", "pattern": "^[A-Z]{2}$"}}, "type": "object", "properties": {"c": {"$ref": "#/definitions/code"}}, "required": ["c"], "additionalProperties": false}),
        &["{\"c\":", "\"US\"}"],
        &[json!({"c": "US"}), json!({"c": "FR"})],
        &[json!({"c": "usa"}), json!({"c": "U"}), json!({}), json!({"c": "US", "d": 1})],
    );
}

#[test]
fn ref_beside_other_keywords_intersects() {
    check(
        json!({"$defs": {"s": {"type": "string", "minLength": 1}}, "$ref": "#/$defs/s", "maxLength": 3}),
        &["\"ab"],
        &[json!("a"), json!("abc")],
        &[json!(""), json!("abcd"), json!(1)],
    );
}

#[test]
fn chained_refs_resolve() {
    check(
        json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/c"}, "c": {"enum": ["x", "y"]}}, "$ref": "#/$defs/a"}),
        &["\"x\""],
        &[json!("x"), json!("y")],
        &[json!("z"), json!(null)],
    );
}

#[test]
fn recursive_ref_to_the_root() {
    let schema = json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2});
    check(
        schema,
        &["[[", "]]", ",["],
        &[json!([]), json!([[]]), json!([[], [[]]]), json!([[[[]]]])],
        &[json!([1]), json!([[], [], []]), json!({}), json!([[1]])],
    );
}

#[test]
fn recursive_tree_through_defs() {
    check(
        json!({
            "$defs": {"node": {
                "type": "object",
                "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                "required": ["v"],
                "additionalProperties": false
            }},
            "$ref": "#/$defs/node"
        }),
        &["{\"v\":", ",\"kids\":[", "]}"],
        &[json!({"v": 1}), json!({"v": 1, "kids": []}), json!({"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4}]}]})],
        &[json!({}), json!({"v": "1"}), json!({"v": 1, "kids": [{}]}), json!({"v": 1, "kids": [{"v": 2, "x": 0}]})],
    );
}

#[test]
fn recursion_past_the_depth_limit_is_rejected_not_cut() {
    // A documented subset: past `max_recursion_depth` entries of one `$ref`,
    // deeper instances are rejected though valid; shallower ones stay exact.
    let schema = json!({"type": "array", "items": {"$ref": "#"}});
    let options = CompileOptions { max_recursion_depth: 2, ..CompileOptions::default() };
    let g = Grammar::compile(&schema, &options).unwrap();
    let oracle = crate::oracle::validator(&schema).unwrap();
    let deep = json!([[[[[]]]]]);
    assert!(oracle.is_valid(&deep));
    assert!(!g.matches(oracle::text(&deep).as_bytes()), "a nesting past the limit was admitted");
    for v in [json!([]), json!([[]])] {
        assert!(oracle.is_valid(&v) && g.matches(oracle::text(&v).as_bytes()), "{v}");
    }
    for v in [json!([1]), json!({})] {
        assert!(!oracle.is_valid(&v) && !g.matches(oracle::text(&v).as_bytes()), "{v}");
    }
}

#[test]
fn refused_references_name_keyword_and_pointer() {
    let options = CompileOptions::default();
    let e = Grammar::compile(&json!({"properties": {"a": {"$ref": "#/$defs/missing"}}}), &options).unwrap_err();
    assert_eq!(e.keyword(), Some("$ref"), "{e}");
    assert!(e.pointer().starts_with("/properties/a"), "{e}");
    let e = Grammar::compile(&json!({"$defs": {"s": {"$anchor": "s", "type": "string"}}, "items": {"$ref": "#s"}}), &options).unwrap_err();
    assert_eq!(e.keyword(), Some("$ref"), "{e}");
    assert!(e.to_string().contains("anchor"), "{e}");
    assert!(e.pointer().starts_with("/items"), "{e}");
    let e = Grammar::compile(&json!({"$ref": "https://example.com/schemas/s.json"}), &options).unwrap_err();
    assert_eq!(e.keyword(), Some("$ref"), "{e}");
    let e = Grammar::compile(&json!({"$defs": {"x": {"$dynamicAnchor": "x"}}, "$dynamicRef": "#x"}), &options).unwrap_err();
    assert!(e.keyword() == Some("$dynamicRef") || e.keyword() == Some("$dynamicAnchor"), "{e}");
}

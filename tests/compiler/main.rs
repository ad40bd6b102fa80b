//! The schema compiler and the token mask: JSON Schema areas against independent oracles
//! (the `jsonschema` crate, hand-written instance sets), the official suite, MaskBench and
//! generated schemas. It needs no model runtime, so it runs under `--no-default-features`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../oracle/mod.rs"]
mod oracle;
#[path = "../token_oracle/mod.rs"]
mod token_oracle;

mod compile_work;
mod json_schema_test_suite;
mod mask_loops;
mod mask_work;
mod maskbench;
mod oracle_keywords;
mod proptest_schemas;
mod schema_arrays;
mod schema_combinators;
mod schema_errors;
mod schema_numbers;
mod schema_objects;
mod schema_references;
mod schema_strings;
mod seed_schemas;
mod token_mask_ends;

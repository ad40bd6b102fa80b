"""Seeded random walks through the Python API end in values Python's jsonschema accepts."""

import json

import jsonschema
import pytest

import strictly
from gguf_reference import REPO
from util import walk

SEEDS = sorted((REPO / "grammars").glob("*.schema.json"))


def validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_schema_walks_validate(path, vocab):
    schema = json.loads(path.read_text())
    grammar = strictly.Grammar.from_json_schema(schema)
    v = validator(schema)
    for seed in range(8):
        _, text = walk(grammar, vocab, seed, max_tokens=300)
        value = json.loads(text)
        assert not list(v.iter_errors(value)), f"seed {seed}: {text!r}"


@pytest.mark.parametrize("half", [0, 1])
def test_maskbench_sample_walks_validate(vocab, maskbench_sample, half):
    """Every other schema of the sample per half, so that two workers share the walks."""
    compiled = walked = 0
    for entry in maskbench_sample[half::2]:
        schema = entry["schema"]
        try:
            grammar = strictly.Grammar.from_json_schema(schema)
        except strictly.SchemaError as e:
            assert e.pointer is not None and str(e)
            continue
        compiled += 1
        v = validator(schema)
        for seed in range(2):
            try:
                _, text = walk(grammar, vocab, seed, max_tokens=300)
            except ValueError as e:  # the walk left too few tokens to close the value
                assert "tokens" in str(e)
                continue
            walked += 1
            errors = [e.message for e in v.iter_errors(json.loads(text))]
            assert not errors, f"{entry['id']} seed {seed}: {text!r}: {errors}"
    assert compiled >= 20 and walked >= 30, (compiled, walked)

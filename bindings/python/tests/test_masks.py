"""The bitmasks: equal to the library's own masks along walks, and, for schemas with a finite
set of instances, equal to a brute-force check of every token against those instances."""

import json
import pathlib

import numpy
import pytest

import strictly
from gguf_reference import REPO
from util import allowed_ids, compact, walk

SEEDS = sorted((REPO / "grammars").glob("*.schema.json"))


def check_against_engine(grammar, vocab, tokens, masks_seen, max_tokens):
    """The masks a walk saw equal `_engine_masks` (the library's Constraint, no matcher),
    with every stop token where the engine has its one end-of-sequence token."""
    engine = strictly._strictly._engine_masks(grammar, vocab, tokens, max_tokens)
    eos, stops = vocab.stop_token_ids[0], set(vocab.stop_token_ids)
    assert len(engine) == len(masks_seen)
    for step, (ours, theirs) in enumerate(zip(masks_seen, engine)):
        expected = set(theirs) | (stops if eos in theirs else set())
        assert ours == expected, f"step {step} of {vocab.decode(tokens)!r}"


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_schema_masks_equal_the_librarys(path, vocab):
    grammar = strictly.Grammar.from_json_schema(path.read_text())
    for seed in range(4):
        seen = []
        tokens, _ = walk(grammar, vocab, seed, max_tokens=120, check=lambda m, t, allowed: seen.append(allowed))
        check_against_engine(grammar, vocab, tokens, seen, 120)


def test_a_maskbench_sample_masks_equal_the_librarys(vocab, maskbench_sample):
    compiled = 0
    for entry in maskbench_sample[:12]:
        try:
            grammar = strictly.Grammar.from_json_schema(entry["schema"])
        except strictly.SchemaError:
            continue
        compiled += 1
        seen, taken = [], []

        def check(m, tokens, allowed):
            seen.append(allowed)
            taken[:] = tokens

        try:
            tokens, _ = walk(grammar, vocab, 7, max_tokens=150, check=check)
        except ValueError:  # too few tokens left to close the value: compare the masks seen
            tokens = list(taken)
        check_against_engine(grammar, vocab, tokens, seen, 150)
    assert compiled >= 8


FINITE = [
    {"enum": ["red", "green", "blue", 12, None, True, [1, "x"]]},
    {"const": {"ok": [False, 2.5]}},
    {"type": "object", "properties": {"a": {"enum": [1, 22]}, "b": {"type": "boolean"}, "c": {"const": "x y"}},
     "required": ["a", "b", "c"], "additionalProperties": False},
    {"type": "array", "items": {"enum": ["ab", "c"]}, "minItems": 1, "maxItems": 2},
]


def instances(schema):
    """Every instance of a FINITE schema, as compact JSON in property order."""
    if "enum" in schema:
        return [compact(v) for v in schema["enum"]]
    if "const" in schema:
        return [compact(schema["const"])]
    if schema["type"] == "object":
        return [compact({"a": a, "b": b, "c": "x y"}) for a in (1, 22) for b in (True, False)]
    items = schema["items"]["enum"]
    return [compact([x]) for x in items] + [compact([x, y]) for x in items for y in items]


@pytest.mark.parametrize("schema", FINITE, ids=lambda s: json.dumps(s)[:40])
def test_finite_schemas_masks_equal_a_brute_force_prefix_check(schema, vocab):
    texts = [t.encode() for t in instances(schema)]
    grammar = strictly.Grammar.from_json_schema(schema)
    stops = set(vocab.stop_token_ids)
    token_bytes = [None if vocab.is_special(i) else vocab.token_bytes(i) for i in range(vocab.vocab_size)]
    bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    # Walk every instance, checking every step's mask against all 49,152 tokens.
    for text in texts:
        m = strictly.Matcher(grammar, vocab)
        prefix = b""
        while True:
            m.fill_next_token_bitmask(bitmask)
            expected = {i for i, b in enumerate(token_bytes) if b and any(t.startswith(prefix + b) for t in texts)}
            if prefix in texts:
                expected |= stops
            assert allowed_ids(bitmask[0]) == expected, f"after {prefix!r}"
            if prefix == text:
                break
            # The longest token that keeps to this instance.
            rest = text[len(prefix):]
            pick = max((i for i in expected - stops if rest.startswith(token_bytes[i])), key=lambda i: len(token_bytes[i]))
            assert m.accept_token(pick)
            prefix += token_bytes[pick]
        assert m.accept_token(vocab.stop_token_ids[0]) and m.is_terminated()


def test_bitmask_rows_and_index_and_padding(vocab):
    grammar = strictly.Grammar.from_json_schema({"type": "boolean"})
    m = strictly.Matcher(grammar, vocab)
    width = strictly.bitmask_width(vocab.vocab_size)
    wide = numpy.full((3, width + 2), -1, dtype=numpy.int32)
    assert m.fill_next_token_bitmask(wide, 2) is True
    assert (wide[:2] == -1).all(), "other rows are untouched"
    assert (wide[2, width:] == 0).all(), "words past the vocabulary are cleared"
    ids = allowed_ids(wide[2])
    assert ids and all(b"true".startswith(vocab.token_bytes(i)) or b"false".startswith(vocab.token_bytes(i)) for i in ids)
    one_row = numpy.zeros(width, dtype=numpy.uint32)
    m.fill_next_token_bitmask(one_row)
    assert allowed_ids(one_row) == ids
    memory = bytearray(width * 4)
    view = memoryview(memory).cast("i")
    m.fill_next_token_bitmask(view)
    assert allowed_ids(numpy.frombuffer(memory, dtype=numpy.int32)) == ids

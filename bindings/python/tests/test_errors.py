"""Refusals raise SchemaError with keyword and pointer; wrong buffers raise ValueError."""

import numpy
import pytest

import strictly


@pytest.mark.parametrize(
    "schema, keyword, pointer",
    [
        ({"not": {"pattern": "^a"}}, "not", ""),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}}, "pattern", "/properties/a"),
        ({"type": "object", "properties": {"n": {"$ref": "https://example.com/x.json"}}}, "$ref", "/properties/n"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, None, ""),
    ],
)
def test_refusals_name_keyword_and_pointer(schema, keyword, pointer):
    with pytest.raises(strictly.SchemaError) as info:
        strictly.Grammar.from_json_schema(schema)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.keyword == keyword and e.pointer == pointer
    assert str(e) == e.message and e.message
    assert e.kind


def test_unknown_keywords_are_ignored_or_denied():
    schema = {"type": "object", "properties": {"a": {"type": "string", "x-order": 1}}}
    g = strictly.Grammar.from_json_schema(schema)
    assert g.ignored_keywords == ["`x-order` at `#/properties/a`"]
    with pytest.raises(strictly.SchemaError) as info:
        strictly.Grammar.from_json_schema(schema, unknown_keywords="deny")
    assert info.value.keyword == "x-order" and info.value.pointer == "/properties/a"
    with pytest.raises(ValueError, match="ignore"):
        strictly.Grammar.from_json_schema(schema, unknown_keywords="maybe")


def test_bad_schema_arguments():
    with pytest.raises(ValueError, match="not JSON"):
        strictly.Grammar.from_json_schema("{")
    with pytest.raises(TypeError):
        strictly.Grammar.from_json_schema(3)


@pytest.fixture(scope="module")
def matcher(vocab):
    return strictly.Matcher(strictly.Grammar.from_json_schema({"type": "boolean"}), vocab)


def test_wrong_buffers_raise_value_error(matcher, vocab):
    width = strictly.bitmask_width(vocab.vocab_size)
    readonly = numpy.zeros((1, width), dtype=numpy.int32)
    readonly.setflags(write=False)
    wrong = [
        numpy.zeros((1, width), dtype=numpy.int64),
        numpy.zeros((1, width), dtype=numpy.float32),
        numpy.zeros((1, width), dtype=numpy.int16),
        numpy.zeros((1, width - 1), dtype=numpy.int32),
        numpy.zeros((1, 1, width), dtype=numpy.int32),
        numpy.zeros((width, 2), dtype=numpy.int32).T,  # not C-contiguous
        readonly,
        b"\0" * (4 * width),
        [0] * width,
        None,
        "bitmask",
    ]
    for buffer in wrong:
        with pytest.raises(ValueError):
            matcher.fill_next_token_bitmask(buffer)
    with pytest.raises(ValueError, match="outside"):
        matcher.fill_next_token_bitmask(numpy.zeros((2, width), dtype=numpy.int32), 2)
    with pytest.raises((ValueError, OverflowError)):
        matcher.fill_next_token_bitmask(numpy.zeros((2, width), dtype=numpy.int32), -1)
    assert not readonly.any(), "a refused buffer is not written"


def test_wrong_batch_arguments_raise_value_error(vocab):
    g = strictly.Grammar.from_json_schema({"type": "boolean"})
    a, b = strictly.Matcher(g, vocab), strictly.Matcher(g, vocab)
    bitmask = strictly.allocate_token_bitmask(2, vocab.vocab_size)
    with pytest.raises(ValueError, match="twice"):
        strictly.fill_next_token_bitmasks([a, a], bitmask)
    with pytest.raises(ValueError, match="twice"):
        strictly.fill_next_token_bitmasks([a, b], bitmask, [1, 1])
    with pytest.raises(ValueError, match="indices"):
        strictly.fill_next_token_bitmasks([a, b], bitmask, [0])
    with pytest.raises(ValueError, match="outside"):
        strictly.fill_next_token_bitmasks([a, b], bitmask, [0, 2])
    with pytest.raises(ValueError):
        strictly.allocate_token_bitmask(0, 10)

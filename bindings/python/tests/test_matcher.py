"""The matcher's methods, in xgrammar's shape."""

import pytest

import strictly
from gguf_reference import GgufTokens
from util import allowed_ids

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "ok": {"type": "boolean"}},
          "required": ["name", "ok"], "additionalProperties": False}


def token(vocab, text: bytes) -> int:
    ids = [i for i in range(vocab.vocab_size) if not vocab.is_special(i) and vocab.token_bytes(i) == text]
    assert ids, text
    return ids[0]


def mask(m, vocab):
    bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    m.fill_next_token_bitmask(bitmask)
    return allowed_ids(bitmask[0])


def test_accept_rollback_reset_and_jump_forward(vocab):
    m = strictly.Matcher(strictly.Grammar.from_json_schema(SCHEMA), vocab)
    assert m.find_jump_forward_string() == '{"name":"'
    start = mask(m, vocab)
    assert m.accept_string('{"name":"')
    after_open = mask(m, vocab)
    assert not m.accept_token(token(vocab, b"\n")), "a disallowed token is refused"
    assert m.num_accepted == 1 and m.text == b'{"name":"'
    assert m.accept_token(token(vocab, b"Bob"))
    assert m.accept_string('","ok":')
    assert m.find_jump_forward_string() == ""
    assert m.accept_token(token(vocab, b"true"))
    assert m.find_jump_forward_string() == "}"
    assert m.accept_string("}") and m.is_accepting() and not m.is_terminated()
    assert mask(m, vocab) == set(vocab.stop_token_ids)
    assert m.accept_token(vocab.stop_token_ids[0]) and m.is_terminated()
    assert not m.accept_token(token(vocab, b"{")), "nothing after the stop token"
    assert mask(m, vocab) == set(vocab.stop_token_ids)
    assert m.num_accepted == 6
    m.rollback(1)
    assert not m.is_terminated() and m.is_accepting()
    m.rollback(4)
    assert m.text == b'{"name":"' and mask(m, vocab) == after_open
    with pytest.raises(ValueError, match="roll back"):
        m.rollback(2)
    m.reset()
    assert m.num_accepted == 0 and mask(m, vocab) == start


def test_bad_tokens_are_refused_not_raised(vocab):
    m = strictly.Matcher(strictly.Grammar.from_json_schema({"type": "boolean"}), vocab)
    for bad in (-1, vocab.vocab_size, 2**40):
        assert not m.accept_token(bad)
    assert not m.accept_token(vocab.stop_token_ids[0]), "no stop before a value"
    assert not m.accept_string("nul") and m.accept_string(b"tr")
    with pytest.raises(ValueError):
        m.accept_string(3)


def test_every_stop_token_ends_a_value(gguf, gguf_tokens: GgufTokens):
    im_start = gguf_tokens.texts.index("<|im_start|>")
    vocab = strictly.Vocabulary.from_gguf(str(gguf))
    two = strictly.Vocabulary.from_tokenizer_json_str(gguf_tokens.tokenizer_json(), [gguf_tokens.eos, im_start])
    g = strictly.Grammar.from_json_schema({"type": "boolean"})
    m = strictly.Matcher(g, two)
    assert m.accept_string("false")
    assert {gguf_tokens.eos, im_start} <= mask(m, two)
    assert m.accept_token(im_start) and m.is_terminated()
    one = strictly.Matcher(g, vocab)
    one.accept_string("false")
    assert im_start not in mask(one, vocab)


def test_max_tokens_keeps_room_to_close_the_value(vocab):
    g = strictly.Grammar.from_json_schema({"type": "array", "items": {"type": "string"}})
    m = strictly.Matcher(g, vocab, max_tokens=3)
    assert m.accept_string("[")
    assert m.accept_string('"')
    # One token left: only one that closes the array can come.
    last = mask(m, vocab)
    assert last and all(vocab.token_bytes(t).endswith(b'"]') for t in last)
    m.accept_token(sorted(last)[0])
    assert mask(m, vocab) == set(vocab.stop_token_ids)
    with pytest.raises(ValueError, match="tokens"):
        strictly.Matcher(strictly.Grammar.from_json_schema({"const": "a" * 200}), vocab, max_tokens=2)


def test_grammar_matches_and_compile_time():
    g = strictly.Grammar.from_json_schema(SCHEMA)
    assert g.matches(b'{"name":"x","ok":false}') and not g.matches(b'{"ok":false,"name":"x"}')
    assert g.compile_time >= 0
    spaced = strictly.Grammar.from_json_schema(SCHEMA, whitespace=2)
    assert spaced.matches(b'{"name": "x",  "ok": false}') and not g.matches(b'{"name": "x","ok":false}')

"""Token bytes equal an independent reading of the GGUF, through each constructor."""

import pytest

import strictly


def test_every_smollm2_token_has_the_bytes_gpt2s_table_gives(vocab, gguf_tokens):
    assert vocab.vocab_size == len(gguf_tokens.bytes) == 49152
    assert vocab.stop_token_ids == [gguf_tokens.eos]
    for i, expected in enumerate(gguf_tokens.bytes):
        if expected is None:
            assert vocab.is_special(i) and vocab.token_bytes(i) == b"", i
        else:
            assert not vocab.is_special(i) and vocab.token_bytes(i) == expected, i


def test_the_tokenizer_json_and_huggingface_readings_equal_the_gguf_one(vocab, gguf_tokens):
    text = gguf_tokens.tokenizer_json()

    class Backend:
        def to_str(self):
            return text

    class FastTokenizer:  # the two attributes transformers' PreTrainedTokenizerFast has that are read
        backend_tokenizer = Backend()
        eos_token_id = gguf_tokens.eos

    for other in [
        strictly.Vocabulary.from_tokenizer_json_str(text, [gguf_tokens.eos]),
        strictly.Vocabulary.from_huggingface(FastTokenizer()),
    ]:
        assert other.vocab_size == vocab.vocab_size
        assert other.stop_token_ids == [gguf_tokens.eos]
        for i in range(vocab.vocab_size):
            assert other.token_bytes(i) == vocab.token_bytes(i), i
            assert other.is_special(i) == vocab.is_special(i), i


def test_from_tokenizer_json_reads_a_file(tmp_path, gguf_tokens, vocab):
    path = tmp_path / "tokenizer.json"
    path.write_text(gguf_tokens.tokenizer_json())
    v = strictly.Vocabulary.from_tokenizer_json(str(path), [gguf_tokens.eos, 1], vocab_size=49216)
    assert v.vocab_size == 49216 and v.stop_token_ids == [gguf_tokens.eos, 1]
    assert all(v.is_special(i) for i in range(49152, 49216))
    assert v.token_bytes(12345) == vocab.token_bytes(12345)
    with pytest.raises(OSError):
        strictly.Vocabulary.from_tokenizer_json(str(tmp_path / "absent.json"), [0])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError):
        strictly.Vocabulary.from_tokenizer_json(str(tmp_path / "bad.json"), [0])


def test_decode_gives_a_sequences_bytes_and_special_tokens_as_text(vocab, gguf_tokens):
    ids = [i for i, b in enumerate(gguf_tokens.bytes) if b is not None and b"\xc3" in b][:3]
    assert vocab.decode(ids) == b"".join(gguf_tokens.bytes[i] for i in ids)
    assert vocab.decode([gguf_tokens.eos]) == gguf_tokens.texts[gguf_tokens.eos].encode()
    assert vocab.decode([]) == b""
    with pytest.raises(ValueError):
        vocab.decode([vocab.vocab_size])


def test_bad_vocabulary_arguments_are_clear_errors(gguf, gguf_tokens, tmp_path):
    with pytest.raises(ValueError, match="smaller"):
        strictly.Vocabulary.from_gguf(str(gguf), vocab_size=10)
    with pytest.raises(ValueError, match="outside"):
        strictly.Vocabulary.from_tokenizer_json_str(gguf_tokens.tokenizer_json(), [10**6])
    with pytest.raises(OSError):
        strictly.Vocabulary.from_gguf(str(tmp_path / "absent.gguf"))
    (tmp_path / "x.gguf").write_bytes(b"not a gguf")
    with pytest.raises(OSError):
        strictly.Vocabulary.from_gguf(str(tmp_path / "x.gguf"))

"""torch tensors as bitmasks (DLPack) and strictly.hf.LogitsProcessor. The tests' venv has no
torch, so these run only where torch is installed (the bench's venv, benches/python/setup.sh)."""

import pytest

import strictly

torch = pytest.importorskip("torch")


def test_a_cpu_torch_tensor_is_filled_through_dlpack(vocab):
    import strictly.hf  # noqa: F401

    m = strictly.Matcher(strictly.Grammar.from_json_schema({"type": "boolean"}), vocab)
    t = torch.zeros((2, strictly.bitmask_width(vocab.vocab_size)), dtype=torch.int32)
    m.fill_next_token_bitmask(t, 1)
    ref = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    m.fill_next_token_bitmask(ref)
    assert (t[1].numpy() == ref[0]).all() and not t[0].any()
    for bad in (torch.zeros_like(t, dtype=torch.int64), torch.zeros_like(t, dtype=torch.float32)):
        with pytest.raises(ValueError):
            m.fill_next_token_bitmask(bad)


def test_the_logits_processor_masks_each_row_and_follows_the_sampled_tokens(vocab):
    import strictly.hf

    g = strictly.Grammar.from_json_schema({"type": "boolean"})
    p = strictly.hf.LogitsProcessor(g, vocab)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = p(ids, torch.zeros(2, vocab.vocab_size + 64))
    assert (out[:, vocab.vocab_size:] == float("-inf")).all(), "columns past the vocabulary"
    allowed = (out[0] > float("-inf")).nonzero().flatten().tolist()
    assert allowed and all(b"true".startswith(vocab.token_bytes(t)) or b"false".startswith(vocab.token_bytes(t)) for t in allowed)
    true = next(t for t in allowed if vocab.token_bytes(t) == b"true")
    out = p(torch.cat([ids, torch.tensor([[true], [true]])], 1), torch.zeros(2, vocab.vocab_size))
    assert (out[1] > float("-inf")).nonzero().flatten().tolist() == vocab.stop_token_ids

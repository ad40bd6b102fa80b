"""Masks filled from two threads at once, and the batch fill, equal the one-by-one fills."""

import json
import threading

import numpy

import strictly
from gguf_reference import REPO
from util import allowed_ids, walk


def test_two_threads_fill_masks_at_once(vocab):
    schema = json.loads((REPO / "grammars" / "search_products.schema.json").read_text())
    grammar = strictly.Grammar.from_json_schema(schema)
    paths = [walk(grammar, vocab, seed, max_tokens=150)[0] for seed in (1, 2)]
    # Masks one thread alone sees, from a separate grammar (its own cache).
    alone = strictly.Grammar.from_json_schema(schema)
    expected = []
    for tokens in paths:
        m = strictly.Matcher(alone, vocab)
        rows = []
        for t in tokens:
            bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
            m.fill_next_token_bitmask(bitmask)
            rows.append(bitmask[0].copy())
            assert m.accept_token(t)
        expected.append(rows)
    # The same walks from two threads at once, sharing one grammar's cache.
    barrier = threading.Barrier(2)
    got, errors = [[], []], []

    def run(k):
        try:
            m = strictly.Matcher(grammar, vocab)
            bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
            barrier.wait()
            for _ in range(3):
                m.reset()
                got[k].clear()
                for t in paths[k]:
                    m.fill_next_token_bitmask(bitmask)
                    got[k].append(bitmask[0].copy())
                    assert m.accept_token(t)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    for k in (0, 1):
        assert len(got[k]) == len(expected[k])
        for a, b in zip(got[k], expected[k]):
            assert numpy.array_equal(a, b)


def test_the_batch_fill_equals_the_single_fills(vocab):
    grammars = [strictly.Grammar.from_json_schema(s) for s in ({"type": "boolean"}, {"type": "integer"},
                                                                 {"type": "array", "items": {"type": "string"}})]
    matchers = [strictly.Matcher(g, vocab) for g in grammars for _ in range(3)]
    for i, m in enumerate(matchers):
        if i % 3:
            m.accept_string("[" if i >= 6 else "1" if i >= 3 else "t")
    batch = numpy.zeros((len(matchers) + 1, strictly.bitmask_width(vocab.vocab_size)), dtype=numpy.int32)
    indices = list(range(len(matchers), 0, -1))
    assert strictly.fill_next_token_bitmasks(matchers, batch, indices) == [True] * len(matchers)
    assert not batch[0].any()
    single = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    for m, i in zip(matchers, indices):
        m.fill_next_token_bitmask(single)
        assert numpy.array_equal(batch[i], single[0])
    assert allowed_ids(batch[indices[3]]) != allowed_ids(batch[indices[4]])

"""Helpers of the tests: bitmask rows as token ids, seeded walks through the matcher."""

from __future__ import annotations

import json
import random

import numpy

import strictly


def allowed_ids(row) -> set[int]:
    bits = numpy.unpackbits(numpy.ascontiguousarray(row).view(numpy.uint8), bitorder="little")
    return set(numpy.flatnonzero(bits).tolist())


def walk(grammar, vocab, seed: int, max_tokens: int = 120, check=None):
    """A seeded walk: at each step a token from the mask (a stop token with odds 1 in 2 when
    one is allowed), to a stop token. Returns the tokens (stop excluded) and the text, or
    raises ValueError when the walk leaves too few of `max_tokens` to close the value."""
    rng = random.Random(seed)
    m = strictly.Matcher(grammar, vocab, max_tokens=max_tokens)
    bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    stops = sorted(vocab.stop_token_ids)
    tokens = []
    while not m.is_terminated():
        m.fill_next_token_bitmask(bitmask, 0)
        ids = numpy.flatnonzero(numpy.unpackbits(bitmask[0].view(numpy.uint8), bitorder="little"))
        if check is not None:
            check(m, tokens, set(ids.tolist()))
        assert len(ids), f"empty mask after {vocab.decode(tokens)!r}"
        stop = [s for s in stops if (bitmask[0, s // 32] >> (s % 32)) & 1]
        if stop and rng.random() < 0.5:
            pick = rng.choice(stop)
        else:
            pick = int(ids[rng.randrange(len(ids))])
        assert m.accept_token(pick), f"the mask allowed {pick} but accept_token refused it"
        if pick not in stops:
            tokens.append(pick)
    return tokens, vocab.decode(tokens)


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

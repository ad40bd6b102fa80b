"""strictly: JSON-Schema-constrained decoding whose output cannot break the schema.

The engine in xgrammar's matcher shape::

    vocab = strictly.Vocabulary.from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    grammar = strictly.Grammar.from_json_schema({"type": "boolean"})
    matcher = strictly.Matcher(grammar, vocab)
    bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)
    matcher.fill_next_token_bitmask(bitmask, 0)   # bit t of row 0 set: token t allowed
    matcher.accept_token(token_id)
"""

from ._strictly import (
    Grammar,
    Matcher,
    SchemaError,
    Vocabulary,
    fill_next_token_bitmasks,
)

__all__ = [
    "Grammar",
    "Matcher",
    "SchemaError",
    "Vocabulary",
    "allocate_token_bitmask",
    "bitmask_width",
    "fill_next_token_bitmasks",
]


def bitmask_width(vocab_size: int) -> int:
    """Words in one bitmask row: ceil(vocab_size / 32)."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, not {vocab_size}")
    return (vocab_size + 31) // 32


def allocate_token_bitmask(batch_size: int, vocab_size: int):
    """A numpy int32 array of shape [batch_size, ceil(vocab_size / 32)], all tokens allowed
    (every bit set), as xgrammar allocates it. Needs numpy."""
    try:
        import numpy
    except ImportError as e:  # pragma: no cover - numpy is in the test venv
        raise ImportError("allocate_token_bitmask needs numpy; any writable int32 buffer works too") from e
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    return numpy.full((batch_size, bitmask_width(vocab_size)), -1, dtype=numpy.int32)

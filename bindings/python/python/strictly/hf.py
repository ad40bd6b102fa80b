"""A `transformers` logits processor that keeps `generate` inside a JSON Schema.

Needs torch and transformers (imported on use, not by ``import strictly``)::

    from transformers import AutoModelForCausalLM, AutoTokenizer
    import strictly, strictly.hf

    name = "HuggingFaceTB/SmolLM2-135M-Instruct"
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name)
    vocab = strictly.Vocabulary.from_huggingface(tokenizer, vocab_size=model.config.vocab_size)
    grammar = strictly.Grammar.from_json_schema({"type": "object", "properties": {"ok": {"type": "boolean"}},
                                                 "required": ["ok"], "additionalProperties": False})
    inputs = tokenizer(["Is the sky blue? Answer in JSON."], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=20,
                         logits_processor=[strictly.hf.LogitsProcessor(grammar, vocab)])
    print(tokenizer.decode(out[0, inputs.input_ids.shape[1]:], skip_special_tokens=True))
"""

from __future__ import annotations

from . import Grammar, Matcher, Vocabulary, allocate_token_bitmask, fill_next_token_bitmasks


def allowed_tokens(bitmask, width: int):
    """The bitmask rows unpacked to booleans (numpy), `width` columns (tokens past the
    vocabulary are disallowed)."""
    import numpy

    bits = numpy.unpackbits(numpy.ascontiguousarray(bitmask).view(numpy.uint8), axis=-1, bitorder="little").astype(bool)
    if bits.shape[-1] >= width:
        return bits[..., :width]
    pad = numpy.zeros(bits.shape[:-1] + (width - bits.shape[-1],), dtype=bool)
    return numpy.concatenate([bits, pad], axis=-1)


class LogitsProcessor:
    """One matcher per sequence of the batch; each call accepts the token the previous step
    chose and sets every disallowed logit to -inf. Use one instance per `generate` call."""

    def __init__(self, grammar: Grammar, vocabulary: Vocabulary, max_tokens: int | None = None):
        self.grammar = grammar
        self.vocabulary = vocabulary
        self.max_tokens = max_tokens
        self.matchers: list[Matcher] | None = None
        self.prompt_len = 0
        self.bitmask = None

    def __call__(self, input_ids, scores):
        import torch

        batch = input_ids.shape[0]
        if self.matchers is None:
            self.matchers = [Matcher(self.grammar, self.vocabulary, self.max_tokens) for _ in range(batch)]
            self.prompt_len = input_ids.shape[1]
            self.bitmask = allocate_token_bitmask(batch, self.vocabulary.vocab_size)
        elif input_ids.shape[1] > self.prompt_len:
            for m, token in zip(self.matchers, input_ids[:, -1].tolist()):
                if not m.is_terminated() and not m.accept_token(token):
                    raise ValueError(f"token {token} was sampled outside the mask")
        fill_next_token_bitmasks(self.matchers, self.bitmask)
        allowed = torch.from_numpy(allowed_tokens(self.bitmask, scores.shape[-1])).to(scores.device)
        return scores.masked_fill(~allowed, float("-inf"))

"""strictly, xgrammar 0.2.8 and llguidance 1.9.1 side by side, in one process, on MaskBench.

    bash benches/python/setup.sh          # the venv (torch comes with xgrammar)
    .venv-bench-python/bin/python benches/python/compare.py --limit 200

Same tokenizer (SmolLM2's, from the GGUF), same schemas, same token sequences: each schema's
first valid instance as compact JSON, its keys in the schema's property order (all three
engines emit properties in schema order), tokenized by the tokenizer. Settings:
- strictly: defaults (compact JSON; unknown keywords ignored);
- xgrammar: any_whitespace=False, separators=(",", ":"), strict_mode=True, compile cache off;
- llguidance: whitespace_flexible=false.

Measures (JSONSchemaBench's): the share of schemas compiled; false accepts over the invalid
instances (an engine that walks an invalid instance's tokens and then accepts the stop
token); compile p50/p99 (for strictly and llguidance the matcher's construction included);
per-token mask mean, p50, p99 and max over the tokens of the schemas all three compiled and
whose valid instance all three accepted, and the first mask apart. For strictly, also a cached
mask's time through Python against its time inside the extension (mask and row written), so
that the Python call's own cost shows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import random
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bindings" / "python" / "tests"))

from gguf_reference import GgufTokens, model_path  # noqa: E402  (the tests' GGUF reader)

import numpy  # noqa: E402

import strictly  # noqa: E402


def schema_order(value, schema, root, depth=0):
    """The instance with object keys in the schema's property order (best effort: local $ref,
    allOf, and the first anyOf/oneOf branch that lists the keys)."""
    if depth > 50 or not isinstance(schema, dict):
        return value
    if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#"):
        target = root
        for part in schema["$ref"][1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        return schema_order(value, target, root, depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key, []) if isinstance(schema.get(key), list) else []:
            props = branch.get("properties", {}) if isinstance(branch, dict) else {}
            if isinstance(value, dict) and props and set(value) <= set(props):
                return schema_order(value, branch, root, depth + 1)
    if isinstance(value, dict):
        props = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
        keys = [k for k in props if k in value] + [k for k in value if k not in props]
        return {k: schema_order(value[k], props.get(k, {}), root, depth + 1) for k in keys}
    if isinstance(value, list):
        prefix = schema.get("prefixItems") or (schema.get("items") if isinstance(schema.get("items"), list) else [])
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [schema_order(v, prefix[i] if i < len(prefix) else items, root, depth + 1) for i, v in enumerate(value)]
    return value


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Strictly:
    name = "strictly"

    def __init__(self, vocab):
        self.vocab = vocab
        self.bitmask = strictly.allocate_token_bitmask(1, vocab.vocab_size)

    def compile(self, schema):
        try:
            return strictly.Matcher(strictly.Grammar.from_json_schema(schema), self.vocab)
        except strictly.SchemaError:
            return None

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask, 0)

    def python_fill(self, m):
        m.fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, m, t):
        return m.accept_token(t)

    def stop(self, m, eos):
        return m.accept_token(eos)


class XGrammar:
    name = "xgrammar"

    def __init__(self, hf_tokenizer, vocab_size, eos):
        import xgrammar

        self.xgr = xgrammar
        info = xgrammar.TokenizerInfo.from_huggingface(hf_tokenizer, vocab_size=vocab_size, stop_token_ids=[eos])
        self.compiler = xgrammar.GrammarCompiler(info, cache_enabled=False)
        self.bitmask = xgrammar.allocate_token_bitmask(1, vocab_size)

    def compile(self, schema):
        try:
            g = self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True)
        except Exception:  # noqa: BLE001 - any refusal counts as not compiled
            return None
        return self.xgr.GrammarMatcher(g)

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, m, t):
        return m.accept_token(t)

    def stop(self, m, eos):
        return m.accept_token(eos)


class LLGuidance:
    name = "llguidance"

    def __init__(self, tokenizer_json, vocab_size, eos):
        import llguidance
        import llguidance.numpy

        self.llg = llguidance
        self.tok = llguidance.LLTokenizer(tokenizer_json, n_vocab=vocab_size, eos_token=eos)
        self.bitmask = llguidance.numpy.allocate_token_bitmask(1, vocab_size)
        self.fill_fn = llguidance.numpy.fill_next_token_bitmask

    def compile(self, schema):
        try:
            grammar = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        except Exception:  # noqa: BLE001
            return None
        m = self.llg.LLMatcher(self.tok, grammar, log_level=0)
        return None if m.is_error() else m

    def fill(self, m):
        self.fill_fn(m, self.bitmask, 0)

    def accept(self, m, t):
        return m.consume_token(t) and not m.is_error()

    def stop(self, m, eos):
        return m.is_accepting() and m.consume_token(eos) and not m.is_error()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "maskbench" / "maskbench-dev.jsonl.gz"))
    ap.add_argument("--limit", type=int, default=0, help="a seeded sample of this many schemas (0: all)")
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    import tokenizers
    import transformers

    gguf = model_path()
    toks = GgufTokens(gguf)
    text = toks.tokenizer_json()
    backend = tokenizers.Tokenizer.from_str(text)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=toks.texts[toks.eos])
    vocab = strictly.Vocabulary.from_gguf(str(gguf))
    V, eos = vocab.vocab_size, toks.eos
    engines = [Strictly(vocab), XGrammar(hf, V, eos), LLGuidance(text, V, eos)]

    with gzip.open(args.data, "rt") as f:
        entries = [json.loads(line) for line in f]
    if args.limit:
        entries = random.Random(args.seed).sample(entries, min(args.limit, len(entries)))

    compiled = {e.name: 0 for e in engines}
    compile_s = {e.name: [] for e in engines}
    valid_ok = {e.name: 0 for e in engines}
    false_accepts = {e.name: [] for e in engines}
    invalid_seen = {e.name: 0 for e in engines}
    masks = {e.name: [] for e in engines}
    first = {e.name: [] for e in engines}
    inside_ns, python_ns = [], []
    shared_schemas = 0
    for n, entry in enumerate(entries):
        schema = entry["schema"]
        valid = [t["data"] for t in entry.get("tests", []) if t.get("valid")]
        invalid = [t["data"] for t in entry.get("tests", []) if not t.get("valid")]
        seqs = {}
        for k, value in [("valid", valid[0])] if valid else []:
            seqs[k] = backend.encode(compact(schema_order(value, schema, schema)), add_special_tokens=False).ids
        matchers = {}
        for e in engines:
            t0 = time.perf_counter()
            m = e.compile(schema)
            dt = time.perf_counter() - t0
            if m is None:
                continue
            compiled[e.name] += 1
            compile_s[e.name].append(dt)
            matchers[e.name] = (e, m)
        # The valid instance, timing every mask.
        walked = {}
        for name, (e, m) in matchers.items():
            if "valid" not in seqs:
                continue
            times, ok = [], True
            for t in seqs["valid"]:
                t0 = time.perf_counter_ns()
                e.fill(m)
                times.append(time.perf_counter_ns() - t0)
                if not e.accept(m, t):
                    ok = False
                    break
            if ok:
                t0 = time.perf_counter_ns()
                e.fill(m)
                times.append(time.perf_counter_ns() - t0)
                ok = e.stop(m, eos)
            valid_ok[name] += ok
            walked[name] = (ok, times)
        if len(walked) == len(engines) and all(ok for ok, _ in walked.values()):
            shared_schemas += 1
            for name, (_, times) in walked.items():
                first[name].append(times[0])
                masks[name].extend(times[1:])
            # strictly again from the start: inside the extension vs through Python, same masks (cached).
            s = engines[0]
            m = s.compile(schema)
            for t in seqs["valid"]:
                s.python_fill(m)  # the mask is cached from here on: both measures below read it
                t0 = time.perf_counter_ns()
                s.python_fill(m)
                python_ns.append(time.perf_counter_ns() - t0)
                inside_ns.append(m._fill_timed(s.bitmask, 0))
                m.accept_token(t)
        # The invalid instances: a false accept walks all tokens and then stops.
        for value in invalid:
            tokens = backend.encode(compact(schema_order(value, schema, schema)), add_special_tokens=False).ids
            for name, (e, _) in matchers.items():
                m = e.compile(schema)
                invalid_seen[name] += 1
                if all(e.accept(m, t) for t in tokens) and e.stop(m, eos):
                    false_accepts[name].append(entry["id"])
        if (n + 1) % 50 == 0:
            print(f"{n + 1}/{len(entries)} schemas", file=sys.stderr)

    us = lambda ns: ns / 1000  # noqa: E731
    report = {"schemas": len(entries), "schemas_timed": shared_schemas, "engines": {}}
    for e in engines:
        k = e.name
        ms = masks[k]
        report["engines"][k] = {
            "compiled": compiled[k],
            "compiled_share": compiled[k] / len(entries),
            "valid_instance_accepted": valid_ok[k],
            "invalid_instances_walked": invalid_seen[k],
            "false_accepts": len(false_accepts[k]),
            "false_accept_ids": false_accepts[k],
            "compile_ms_p50": 1000 * pct(compile_s[k], 0.5),
            "compile_ms_p99": 1000 * pct(compile_s[k], 0.99),
            "mask_us_mean": us(statistics.fmean(ms)) if ms else None,
            "mask_us_p50": us(pct(ms, 0.5)),
            "mask_us_p99": us(pct(ms, 0.99)),
            "mask_us_max": us(max(ms)) if ms else None,
            "first_mask_us_mean": us(statistics.fmean(first[k])) if first[k] else None,
            "first_mask_us_p50": us(pct(first[k], 0.5)),
            "tokens_timed": len(ms),
        }
    if python_ns:
        report["strictly_python_call"] = {
            "through_python_us_p50": us(pct(python_ns, 0.5)),
            "inside_extension_us_p50": us(pct(inside_ns, 0.5)),
            "added_us_p50": us(pct(python_ns, 0.5) - pct(inside_ns, 0.5)),
            "through_python_us_mean": us(statistics.fmean(python_ns)),
            "inside_extension_us_mean": us(statistics.fmean(inside_ns)),
        }
    print(json.dumps(report, indent=2))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

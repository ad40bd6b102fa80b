#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) anchor for strictly's benchmarks.

    .venv-bench/bin/python benches/llamacpp/bench.py [--json PATH] [--max-tokens 256]

Three parts, all on the same Llama(model, n_threads=2, n_ctx=2048, seed=0):

  (a) plain decoding: prefill tokens/s and decode ms/token, greedy, EOS
      suppressed so every rep generates exactly --n-gen tokens; median of
      --reps reps. Measured on the low-level API (eval + argmax over the last
      logits) so it is llama.cpp's decode plus a thin Python loop; llama.cpp's
      own perf counters are recorded beside the wall clock. A high-level
      create_completion run (EOS not suppressed) is recorded too.
  (b) JSON-schema mode: each support message through create_chat_completion
      with response_format={"type":"json_object","schema":...},
      temperature=0, max_tokens=--max-tokens, after one untimed warm-up call
      that puts the shared system-prompt prefix in the KV cache.
  (c) the recursive search_products schema on the product-search prompt.

--json PATH writes everything; stdout gets a markdown table and summary lines.
"""
import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "benches" / "seed"
GRAMMARS = REPO / "grammars"
DEFAULT_MODEL = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

PLAIN_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWrite a detailed, step-by-step guide for a customer who "
    "wants to return a broken kettle bought online: what to check first, how to "
    "contact support, how to pack the item, and what happens with the refund."
    "<|im_end|>\n<|im_start|>assistant\n"
)
WARMUP_USER = "Hello, I have a question."
SEARCH_SYSTEM = (
    "You turn a customer's request into a product search filter for a sports "
    "travel shop. Reply with JSON only: q is a free-text query or null, and "
    "filters is one filter or an and/or group of filters."
)


# ---------------------------------------------------------------- machine --

def read_loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpu_jiffies():
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


class CpuWatch:
    """How busy the machine was during a section, and how much of that was
    someone else (total busy CPU minus this process's own CPU time)."""

    def __enter__(self):
        self.load0 = read_loadavg()
        self.j0 = cpu_jiffies()
        self.t0 = os.times()
        self.w0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.w1 = time.perf_counter()
        t1 = os.times()
        j1 = cpu_jiffies()
        self.result = {"loadavg_before": self.load0, "loadavg_after": read_loadavg()}
        if self.j0 and j1:
            hz = os.sysconf("SC_CLK_TCK")
            busy_s = (j1[0] - self.j0[0]) / hz
            total_s = (j1[1] - self.j0[1]) / hz
            own_s = (t1.user - self.t0.user) + (t1.system - self.t0.system)
            if total_s > 0:
                self.result["machine_busy_share"] = round(busy_s / total_s, 3)
                self.result["others_busy_share"] = round(max(0.0, busy_s - own_s) / total_s, 3)
        return False


def wait_for_idle(max_wait_s, threshold, window_s=5.0):
    """Wait (up to max_wait_s) until the machine's busy share over a window,
    all of it someone else's while we sleep, is below threshold."""
    t0 = time.perf_counter()
    samples = []
    while True:
        j0 = cpu_jiffies()
        time.sleep(window_s)
        j1 = cpu_jiffies()
        share = (j1[0] - j0[0]) / max(1, j1[1] - j0[1]) if j0 and j1 else 0.0
        samples.append(round(share, 3))
        waited = time.perf_counter() - t0
        if share < threshold:
            return {"idle": True, "waited_s": round(waited, 1), "last_busy_share": samples[-1], "threshold": threshold}
        if waited >= max_wait_s:
            return {"idle": False, "waited_s": round(waited, 1), "last_busy_share": samples[-1],
                    "threshold": threshold, "busy_samples_tail": samples[-12:]}
        print(f"  machine busy ({share:.0%} of all cores over {window_s:.0f} s); waiting for idle "
              f"({waited:.0f}/{max_wait_s:.0f} s)", file=sys.stderr, flush=True)


GUARD = {"threshold": 0.15, "retries": 0, "wait_s": 600}


def guarded(fn, before_retry=None):
    """Run fn() under a CpuWatch. If others used more than GUARD threshold of
    the machine meanwhile, wait for idle and run it again (GUARD retries
    times at most). Returns (value, cpu, attempts)."""
    attempts = []
    while True:
        with CpuWatch() as w:
            value = fn()
        share = w.result.get("others_busy_share") or 0.0
        attempts.append(share)
        if share <= GUARD["threshold"] or len(attempts) > GUARD["retries"]:
            w.result["attempts_others_busy_share"] = attempts
            return value, w.result, len(attempts)
        print(f"    others used {share:.0%} of the machine during that run; waiting for idle and "
              f"running it again", file=sys.stderr, flush=True)
        wait_for_idle(GUARD["wait_s"], GUARD["threshold"], window_s=3.0)
        if before_retry:
            before_retry()


def machine_info(llama_cpp):
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception as e:  # noqa: BLE001
            return f"unavailable: {e}"

    import importlib.metadata as md
    top = sh(["top", "-bn1", "-w", "200"]).splitlines()
    sysinfo = llama_cpp.llama_print_system_info()
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "llama_cpp_python": llama_cpp.__version__,
        "jsonschema": md.version("jsonschema"),
        "python": platform.python_version(),
        "nproc": sh(["nproc"]),
        "cpu_model": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                           if l.startswith("model name")), None),
        "kernel": platform.release(),
        "llama_system_info": sysinfo.decode() if isinstance(sysinfo, bytes) else sysinfo,
        "uptime_at_start": sh(["uptime"]),
        "top_at_start": top[:20],
    }


def rel(path):
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def perf(llm, llama_cpp):
    p = llama_cpp.llama_perf_context(llm.ctx)
    return {"prompt_eval_ms": round(p.t_p_eval_ms, 3), "prompt_eval_tokens": p.n_p_eval,
            "eval_ms": round(p.t_eval_ms, 3), "eval_tokens": p.n_eval}


def perf_reset(llm, llama_cpp):
    llama_cpp.llama_perf_context_reset(llm.ctx)


# ------------------------------------------------------------ (a) plain --

def bench_plain(llm, llama_cpp, n_gen, reps):
    import numpy as np

    prompt = llm.tokenize(PLAIN_PROMPT.encode("utf-8"), add_bos=False, special=True)
    n_vocab = llm.n_vocab()
    eos = llm.token_eos()

    def one_rep():
        llm.reset()
        perf_reset(llm, llama_cpp)
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        out = []
        for _ in range(n_gen):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
            logits = logits.copy()
            logits[eos] = -np.inf  # ignore EOS: always generate n_gen tokens
            tok = int(np.argmax(logits))
            out.append(tok)
            llm.eval([tok])
        t2 = time.perf_counter()
        p = perf(llm, llama_cpp)
        # The last eval's logits are not needed; it still counts as one of the
        # n_gen decode steps (each step = one forward pass of one token).
        return {
            "prefill_ms": (t1 - t0) * 1e3,
            "decode_ms": (t2 - t1) * 1e3,
            "llama_perf": p,
            "tokens": out,
        }

    one_rep()  # warm-up: page in weights, build graphs
    with CpuWatch() as w:
        guarded_runs = [guarded(one_rep) for _ in range(reps)]
    runs = [g[0] for g in guarded_runs]
    texts = {llm.detokenize(r["tokens"]).decode("utf-8", "replace") for r in runs}
    prefill_ms = [r["prefill_ms"] for r in runs]
    decode_ms_tok = [r["decode_ms"] / n_gen for r in runs]
    perf_decode = [r["llama_perf"]["eval_ms"] / max(1, r["llama_perf"]["eval_tokens"]) for r in runs]
    perf_prefill = [r["llama_perf"]["prompt_eval_ms"] for r in runs]
    res = {
        "method": "low-level: Llama.eval(prompt) then n_gen x (argmax over last logits with EOS masked, Llama.eval([tok])); greedy",
        "prompt_tokens": len(prompt),
        "n_gen": n_gen,
        "reps": reps,
        "prefill_ms_per_rep": [round(x, 3) for x in prefill_ms],
        "decode_ms_per_token_per_rep": [round(x, 4) for x in decode_ms_tok],
        "median_prefill_ms": round(statistics.median(prefill_ms), 3),
        "median_prefill_tok_s": round(len(prompt) / (statistics.median(prefill_ms) / 1e3), 1),
        "median_decode_ms_per_token": round(statistics.median(decode_ms_tok), 4),
        "median_decode_tok_s": round(1e3 / statistics.median(decode_ms_tok), 1),
        "llama_perf_median_prefill_ms": round(statistics.median(perf_prefill), 3),
        "llama_perf_median_decode_ms_per_token": round(statistics.median(perf_decode), 4),
        "llama_perf_per_rep": [r["llama_perf"] for r in runs],
        "others_busy_share_per_rep": [g[1].get("others_busy_share") for g in guarded_runs],
        "attempts_per_rep": [g[2] for g in guarded_runs],
        "outputs_identical_across_reps": len(texts) == 1,
        "output_text": sorted(texts)[0],
        "cpu": w.result,
    }

    # High-level API, EOS honoured (create_completion has no ignore_eos).
    hl = []
    with CpuWatch() as w2:
        def hl_rep():
            llm.reset()
            perf_reset(llm, llama_cpp)
            t0 = time.perf_counter()
            r = llm.create_completion(prompt=prompt, max_tokens=n_gen, temperature=0)
            wall = (time.perf_counter() - t0) * 1e3
            return {"wall_ms": round(wall, 3), "completion_tokens": r["usage"]["completion_tokens"],
                    "finish_reason": r["choices"][0]["finish_reason"], "llama_perf": perf(llm, llama_cpp)}
        for _ in range(reps):
            v, cpu, n = guarded(hl_rep)
            v["others_busy_share"] = cpu.get("others_busy_share")
            v["attempts"] = n
            hl.append(v)
    med_wall = statistics.median(h["wall_ms"] for h in hl)
    ct = hl[0]["completion_tokens"]
    res["high_level_create_completion"] = {
        "note": "create_completion(prompt_tokens, max_tokens=n_gen, temperature=0); EOS not suppressed; wall includes prefill",
        "runs": hl,
        "completion_tokens": ct,
        "median_wall_ms": round(med_wall, 3),
        "median_llama_perf_decode_ms_per_token": round(statistics.median(
            h["llama_perf"]["eval_ms"] / max(1, h["llama_perf"]["eval_tokens"]) for h in hl), 4),
        "cpu": w2.result,
    }
    return res


# ------------------------------------------------------- (b)/(c) schema --

def grammar_check(schema):
    """Convert the schema the way create_chat_completion does, but without
    its silent fallback to a generic JSON grammar on failure."""
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf
    out = {}
    t0 = time.perf_counter()
    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
        out["converted"] = True
        out["gbnf_rules"] = sum(1 for l in gbnf.splitlines() if "::=" in l)
        out["gbnf"] = gbnf
    except Exception as e:  # noqa: BLE001
        out["converted"] = False
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    try:
        LlamaGrammar.from_string(gbnf, verbose=False)
        out["parsed_by_llama_cpp"] = True
    except Exception as e:  # noqa: BLE001
        out["parsed_by_llama_cpp"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    out["convert_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
    return out


def validate(raw, validator):
    r = {"parses": False, "valid": False, "error": None}
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        r["error"] = f"json: {e}"
        return r
    r["parses"] = True
    errs = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    if errs:
        r["error"] = "schema: " + "; ".join(f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errs[:3])
    else:
        r["valid"] = True
    return r


def chat_call(llm, llama_cpp, system, user, schema, cap):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    extra = {} if schema is None else {"response_format": {"type": "json_object", "schema": schema}}
    perf_reset(llm, llama_cpp)
    t0 = time.perf_counter()
    resp = llm.create_chat_completion(
        messages=messages,
        temperature=0,
        max_tokens=cap,
        **extra,
    )
    wall = (time.perf_counter() - t0) * 1e3
    p = perf(llm, llama_cpp)
    return resp, wall, p


def bench_schema(llm, llama_cpp, system, users, schema, cap, reps, label):
    """schema=None: the same calls without response_format (no grammar), as
    a control that isolates what the grammar costs per token."""
    from jsonschema import Draft202012Validator
    validator = Draft202012Validator(schema if schema is not None else {})

    # Untimed warm-up with a message outside the set: the system prompt and the
    # chat header are then in the KV cache, and every timed call reuses that
    # prefix (llama-cpp-python's in-memory longest-prefix reuse).
    chat_call(llm, llama_cpp, system, WARMUP_USER, schema, cap)

    # Every timed call starts from the same cache state: exactly the shared
    # prefix "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
    # cached, nothing more (so a repeat or a retry of the same message does
    # not find its whole prompt cached).
    prefix = llm.tokenize(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n".encode("utf-8"),
                          add_bos=False, special=True)
    cached = list(llm._input_ids)  # tokens the KV cache holds after the warm-up
    prefix_ok = cached[:len(prefix)] == prefix

    def prime():
        if prefix_ok:
            llm.n_tokens = min(llm.n_tokens, len(prefix))

    rows = []
    with CpuWatch() as w:
        for i, user in enumerate(users):
            walls = []
            shares = []
            attempts = 0
            for _ in range(reps):
                def call():
                    prime()
                    return chat_call(llm, llama_cpp, system, user, schema, cap)
                (resp, wall, p), cpu, n = guarded(call)
                walls.append(wall)
                shares.append(cpu.get("others_busy_share"))
                attempts += n
            ch = resp["choices"][0]
            raw = ch["message"]["content"] or ""
            ct = resp["usage"]["completion_tokens"]
            lat = statistics.median(walls)
            v = validate(raw, validator)
            rows.append({
                "i": i + 1,
                "message": user,
                "latency_ms": round(lat, 3),
                "latency_ms_per_rep": [round(x, 3) for x in walls],
                "prompt_tokens": resp["usage"]["prompt_tokens"],
                "prompt_tokens_evaluated": p["prompt_eval_tokens"],
                "completion_tokens": ct,
                "tokens_per_s": round(ct / (lat / 1e3), 2) if lat > 0 else None,
                "llama_perf": p,
                "non_forward_ms": round(lat - p["prompt_eval_ms"] - p["eval_ms"], 3),
                "others_busy_share_per_rep": shares,
                "attempts": attempts,
                "finish_reason": ch["finish_reason"],
                "parses_json": v["parses"],
                "valid": v["valid"],
                "validation_error": v["error"],
                "raw_output": raw,
            })
            print(f"  [{label}] {i + 1}/{len(users)} {lat:8.0f} ms  {ct:4d} tok  "
                  f"{ch['finish_reason']:6s} valid={v['valid']}", file=sys.stderr, flush=True)
    w.result["cached_prefix_tokens"] = len(prefix) if prefix_ok else None
    return rows, w.result


# ------------------------------------------------------------------ main --

def md_table(rows):
    out = ["| # | message | ms | tokens | tok/s | finish | JSON | valid |",
           "|---|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        msg = r["message"] if len(r["message"]) <= 48 else r["message"][:45] + "..."
        out.append(f"| {r['i']} | {msg.replace('|', '/')} | {r['latency_ms']:.0f} | {r['completion_tokens']} | "
                   f"{r['tokens_per_s']:.1f} | {r['finish_reason']} | {'yes' if r['parses_json'] else 'no'} | "
                   f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="llama.cpp anchor: plain decode speed and JSON-schema mode")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--max-tokens", type=int, default=256, help="completion cap in JSON-schema mode")
    ap.add_argument("--n-gen", type=int, default=128, help="tokens generated per plain-decode rep")
    ap.add_argument("--reps", type=int, default=5, help="plain-decode reps (median)")
    ap.add_argument("--schema-reps", type=int, default=1, help="timed calls per schema message (median)")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--skip-control", action="store_true", help="skip the no-grammar control run")
    ap.add_argument("--note", default="", help="free text stored in the JSON")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before timing, wait up to this long for the machine to be idle")
    ap.add_argument("--retry-busy", type=int, default=0, metavar="N",
                    help="re-run a timed rep/call (up to N times) when other processes used more than "
                         "--idle-threshold of the machine during it")
    ap.add_argument("--idle-threshold", type=float, default=0.15,
                    help="busy share of all cores (0-1) below which the machine counts as idle")
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama

    GUARD.update(threshold=args.idle_threshold, retries=args.retry_busy,
                 wait_s=args.wait_idle if args.wait_idle > 0 else 600)
    idle = None
    if args.wait_idle > 0:
        idle = wait_for_idle(args.wait_idle, args.idle_threshold)
        print(f"idle check: {idle}", file=sys.stderr, flush=True)
    info = machine_info(llama_cpp)
    info["idle_check"] = idle
    load = read_loadavg()
    if load and load[0] > 0.5:
        print(f"WARNING: 1-min load average is {load[0]:.2f} before timing; numbers may be slowed "
              f"by other work (recorded in the JSON)", file=sys.stderr)

    llm_kwargs = dict(model_path=str(args.model), n_threads=2, n_ctx=2048, verbose=False, seed=0)
    t0 = time.perf_counter()
    llm = Llama(**llm_kwargs)
    load_ms = (time.perf_counter() - t0) * 1e3

    result = {
        "tool": "benches/llamacpp/bench.py",
        "note": args.note,
        "options": {k: (rel(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info,
        "model": {"path": rel(args.model),
                  "sha256": sha256(args.model), "load_ms": round(load_ms, 1)},
        "llama_kwargs": {k: v for k, v in llm_kwargs.items() if k != "model_path"},
        "chat_format": llm.chat_format,
        "sampling": "temperature=0 (greedy sampler), repeat_penalty=1.0 (create_chat_completion default), no top-k/top-p effect at temp 0",
    }

    if not args.skip_plain:
        print("plain decode...", file=sys.stderr, flush=True)
        result["plain"] = bench_plain(llm, llama_cpp, args.n_gen, args.reps)

    system = (SEED / "support_system_prompt.txt").read_text("utf-8").strip()
    users = [l.strip() for l in (SEED / "support_messages.txt").read_text("utf-8").splitlines() if l.strip()]
    schema = json.loads((GRAMMARS / "support_classification.schema.json").read_text("utf-8"))
    print("support schema...", file=sys.stderr, flush=True)
    gc = grammar_check(schema)
    rows, cpu = bench_schema(llm, llama_cpp, system, users, schema, args.max_tokens, args.schema_reps, "support")
    lat = [r["latency_ms"] for r in rows]
    result["support"] = {
        "schema": "grammars/support_classification.schema.json",
        "max_tokens": args.max_tokens,
        "reps": args.schema_reps,
        "warmup": f"one untimed call with user message {WARMUP_USER!r}",
        "grammar": gc,
        "messages": rows,
        "median_latency_ms": round(statistics.median(lat), 3),
        "valid_count": sum(r["valid"] for r in rows),
        "parses_count": sum(r["parses_json"] for r in rows),
        "hit_cap_count": sum(r["finish_reason"] == "length" for r in rows),
        "n": len(rows),
        "total_completion_tokens": sum(r["completion_tokens"] for r in rows),
        "cpu": cpu,
    }

    if not args.skip_control:
        print("support prompts without a grammar (control)...", file=sys.stderr, flush=True)
        crows, ccpu = bench_schema(llm, llama_cpp, system, users, None, args.max_tokens, 1, "no-grammar")
        per_tok = lambda r: r["non_forward_ms"] / max(1, r["completion_tokens"])
        result["support_no_grammar_control"] = {
            "note": "same system prompt, messages, cap and cache priming, no response_format: "
                    "non_forward_ms (wall minus llama.cpp prompt-eval and eval time) per token here vs. "
                    "in 'support' is what grammar-constrained sampling costs",
            "messages": [{k: r[k] for k in ("i", "latency_ms", "completion_tokens", "tokens_per_s", "llama_perf",
                                            "non_forward_ms", "others_busy_share_per_rep", "finish_reason",
                                            "raw_output")} for r in crows],
            "median_latency_ms": round(statistics.median(r["latency_ms"] for r in crows), 3),
            "median_non_forward_ms_per_token": round(statistics.median(per_tok(r) for r in crows), 4),
            "median_eval_ms_per_token": round(statistics.median(
                r["llama_perf"]["eval_ms"] / max(1, r["llama_perf"]["eval_tokens"]) for r in crows), 4),
            "cpu": ccpu,
        }
        result["support"]["median_non_forward_ms_per_token"] = round(statistics.median(per_tok(r) for r in rows), 4)
        result["support"]["median_eval_ms_per_token"] = round(statistics.median(
            r["llama_perf"]["eval_ms"] / max(1, r["llama_perf"]["eval_tokens"]) for r in rows), 4)

    search_user = (SEED / "search_products_prompt.txt").read_text("utf-8").strip()
    search_schema = json.loads((GRAMMARS / "search_products.schema.json").read_text("utf-8"))
    print("search_products schema...", file=sys.stderr, flush=True)
    sgc = grammar_check(search_schema)
    srows, scpu = bench_schema(llm, llama_cpp, SEARCH_SYSTEM, [search_user], search_schema,
                               args.max_tokens, args.schema_reps, "search")
    result["search_products"] = {
        "schema": "grammars/search_products.schema.json",
        "system_prompt": SEARCH_SYSTEM,
        "max_tokens": args.max_tokens,
        "grammar": sgc,
        "result": srows[0],
        "cpu": scpu,
    }
    result["machine"]["uptime_at_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    # ---- stdout
    print(f"## llama.cpp anchor ({info['date_utc']}, llama-cpp-python {info['llama_cpp_python']}, "
          f"nproc {info['nproc']}, load {load})\n")
    if "plain" in result:
        p = result["plain"]
        print(f"plain: prompt {p['prompt_tokens']} tok, prefill median {p['median_prefill_ms']:.1f} ms "
              f"= {p['median_prefill_tok_s']:.0f} tok/s; decode {p['n_gen']} tok x {p['reps']} reps: "
              f"median {p['median_decode_ms_per_token']:.2f} ms/token = {p['median_decode_tok_s']:.1f} tok/s "
              f"(llama.cpp perf: {p['llama_perf_median_decode_ms_per_token']:.2f} ms/token)\n")
    print(f"support schema, cap {args.max_tokens}:\n")
    print(md_table(rows))
    s = result["search_products"]["result"]
    print(f"\nsearch_products (recursive schema): converted={sgc['converted']} "
          f"parsed={sgc.get('parsed_by_llama_cpp')}; {s['latency_ms']:.0f} ms, {s['completion_tokens']} tok, "
          f"finish={s['finish_reason']}, JSON={s['parses_json']}, valid={s['valid']}"
          + (f" ({s['validation_error']})" if s["validation_error"] else ""))
    sup = result["support"]
    print(f"\nmedian ms per message: {sup['median_latency_ms']:.0f}")
    print(f"valid: {sup['valid_count']} of {sup['n']} (parse as JSON: {sup['parses_count']}, hit the cap: {sup['hit_cap_count']})")
    if "plain" in result:
        print(f"median decode ms/token: {result['plain']['median_decode_ms_per_token']:.2f}")
    if "support_no_grammar_control" in result:
        c = result["support_no_grammar_control"]
        print(f"per generated token, support schema vs no grammar: forward {sup['median_eval_ms_per_token']:.2f} vs "
              f"{c['median_eval_ms_per_token']:.2f} ms, everything else (sampling incl. grammar, Python) "
              f"{sup['median_non_forward_ms_per_token']:.2f} vs {c['median_non_forward_ms_per_token']:.2f} ms")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

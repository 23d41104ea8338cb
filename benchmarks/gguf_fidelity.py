"""How close each llama.cpp serving file stays to the trained weights: the engine's 48 greedy tokens on one prompt,
their perplexity under the engine itself and under transformers (the weights training uses). The figures behind
FINASSIST_LLM_GGUF_TYPE's choice (docs/benchmarks.md; tests/test_llm_engine.py asserts Q8_0 within 5 %).

    .venv/bin/python benchmarks/gguf_fidelity.py [--types packaged,Q8_0,Q4_0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default="packaged,Q8_0,Q4_0")
    args = ap.parse_args()
    from finassist.config import Settings
    from finassist.llm import open_llm
    from finassist.llm.llamacpp import LlamaCppLLM, serving_gguf
    from finassist.llm.local import packaged_gguf
    from test_llm_engine import engine_vs_reference_perplexity

    reference = open_llm(Settings(), adapter="")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.types.split(","):
            engine = LlamaCppLLM(gguf=serving_gguf(packaged_gguf(), kind, Path(tmp)),
                                 models_dir=Settings().models_path, context_window=2048, parallel=1)
            own, trained = engine_vs_reference_perplexity(engine, reference.model)
            engine.close()
            rows[kind] = {"engine_ppl": round(own, 3), "trained_ppl": round(trained, 3),
                          "gap": round(abs(trained - own) / own, 3)}
            print(kind, rows[kind], file=sys.stderr, flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Untrained LoRA adapters that still change the model, for engine parity and hot-swap tests (and
benchmarks/engines.py): peft starts lora_B at zero, which would change nothing, so B is drawn at random."""

from __future__ import annotations

import json
from pathlib import Path


def random_lora(out: Path, seed: int = 0, std: float = 0.1) -> Path:
    """A peft LoRA (r=4) on every attention projection of the packaged SmolLM2 (q and k exercise llama's rotary row
    order in GGUF), with the `finassist.json` training record serving reads. std 0.1 changes the answers without
    making the model chaotic (at 0.5 near-tied logits decide, and any two correct engines part ways)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finassist.config import Settings
    from finassist.llm.local import PACKAGED_MODEL, packaged_model_dir

    base = AutoModelForCausalLM.from_pretrained(packaged_model_dir(Settings().models_path), dtype=torch.float32)
    torch.manual_seed(seed)  # before get_peft_model, which draws lora_A: the same adapter in every run
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj",
                                                                               "o_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=std)
    model.save_pretrained(out)
    (out / "finassist.json").write_text(json.dumps({"prompt_version": "v1", "base_model": PACKAGED_MODEL}))
    return out

"""Messages of the model stack that a finassist user cannot act on, silenced by their exact text.

Each is matched by its logger or module and its wording, so every other warning of the same library still shows.
Installed when `finassist.llm` is imported and by every CLI command, before the imports and calls that emit them.
"""

from __future__ import annotations

import logging
import warnings


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# bitsandbytes logs this at import (peft imports it; sentence-transformers imports peft) on CPUs with AVX512-BF16:
# its optional fast CPU 4-bit kernel would be downloaded from the Hub by `kernels`. finassist quantises on CUDA only
# and downloads nothing at run time, so there is nothing to install.
_BNB_CPU_KERNEL = _DropMessage("Failed to load CPU gemm_4bit_forward from kernels-community")


def silence_library_noise() -> None:
    """Idempotent: the same filter objects are added once."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_BNB_CPU_KERNEL)
    # peft (0.21) reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model with LoRA.
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning,
                            module=r"transformers\.modeling_utils")

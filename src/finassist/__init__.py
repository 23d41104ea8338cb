"""finassist: a financial assistant on the Feature/Training/Inference pipeline design."""

__version__ = "0.1.0"

import os as _os

# comet-ml (the optional tracker, imported by transformers' integrations whenever it is installed) by default sends
# its own errors to Sentry and mirrors every MLflow run into an offline Comet experiment (git patch and source code
# included) in the working directory. finassist phones nowhere and writes nothing unless you configure it.
_os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
_os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
_os.environ.setdefault("COMET_INTERNAL_REPORTING", "false")

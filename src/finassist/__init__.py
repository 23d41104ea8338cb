"""finassist: a financial assistant on the Feature/Training/Inference pipeline design."""

__version__ = "0.1.0"

"""`finassist` command line: wires the pipelines' entry points (the one place that imports more than one pipeline).
With --json the last stdout line is one JSON value; progress and logs go to stderr."""

from finassist.cli import feature, loop, models, quickstart, serve, training  # noqa: F401  (registers the commands)
from finassist.cli.common import app

__all__ = ["app"]

"""finassist sends nothing anywhere it was not configured to: comet-ml (installed for optional tracking, and
imported by transformers' integrations) must neither report errors to Sentry nor mirror MLflow runs."""

from __future__ import annotations

import subprocess
import sys


def test_importing_finassist_turns_off_comet_error_reporting_and_auto_logging():
    code = (
        "import finassist, comet_ml, os\n"
        "from comet_ml.error_tracking.api import enabled_in_config\n"
        "print(enabled_in_config(), os.environ['COMET_DISABLE_AUTO_LOGGING'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "1"]

"""The WSGI entry point granian's workers import: it freezes what start-up made, so a
full garbage collection no longer walks the ~100,000 objects every worker keeps for
its whole life (one such pass held the GIL for ~65 ms: the slowest requests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def test_importing_the_application_freezes_the_start_up_objects(tmp_path):
    script = textwrap.dedent(
        """
        import gc, json
        import vouch.wsgi
        frozen = gc.get_freeze_count()
        gc.collect()
        print(json.dumps({
            "frozen": frozen,
            "views_imported": "vouch.references.requests.views" in __import__("sys").modules,
            "tracked": len(gc.get_objects()),
            "callable": callable(vouch.wsgi.application),
            "switch_interval": __import__("sys").getswitchinterval(),
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_") and k != "DJANGO_SETTINGS_MODULE"} | {
        "VOUCH_DATA_DIR": str(tmp_path),
        "VOUCH_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["callable"] and found["views_imported"]
    # Python's switch interval unless the operator chose another (docs/security/limits.md).
    assert found["switch_interval"] == 0.005
    # Most of what start-up made is frozen; a full collection walks only the rest.
    assert found["frozen"] > 50_000
    assert found["tracked"] < found["frozen"] / 2

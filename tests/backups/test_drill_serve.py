"""The daily restore drill inside a real `vouch serve`: a server started when the daily
drill is due takes it (the sample and the control database) and records it; a drill taken
by hand just before does not postpone it (the schedule counts from its own last drill)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.backups.mirroring import wait_for
from tests.live import cleanup, make_server
from tests.server import helpers

pytestmark = pytest.mark.server


def drill_runs(server) -> list[dict]:
    output = helpers.run_django(
        server,
        """
        import json
        from vouch.backups.models import DrillRun
        rows = DrillRun.objects.order_by("started_at").values("company_id", "scope", "outcome", "scheduled", "problem")
        print(json.dumps([{**r, "company_id": str(r["company_id"] or "")} for r in rows]))
        """,
    )
    return json.loads(output.strip().splitlines()[-1])


def test_serve_takes_the_daily_drill_when_due_even_after_a_manual_drill():
    # Backups off in this server: the sets are taken here, by hand. Its first start finds
    # no set (nothing to drill: it next looks in 10 minutes); the test then restarts it.
    server = make_server(extra_env={"VOUCH_BACKUP_EVERY_MINUTES": "0", "VOUCH_SERVE_MIRROR": "0"})
    try:
        server.start()
        company_id = helpers.create_member(server, f"drill-{uuid.uuid4().hex[:8]}@example.com", "Daily Drill")[
            "company_id"
        ]
        backed_up = server.vouch("backup", "run", "--no-progress", check=False)
        assert backed_up.returncode == 0, backed_up.stderr
        manual = server.vouch("backup", "drill", "--company", company_id, "--no-progress", check=False)
        assert manual.returncode == 0, manual.stderr
        [by_hand] = drill_runs(server)
        assert not by_hand["scheduled"]

        # Restarted on the same data (LiveServer.stop would also drop its PostgreSQL database).
        server.process.terminate()
        server.process.wait(timeout=30)
        server.start()

        def daily() -> list[dict]:
            scheduled = [r for r in drill_runs(server) if r["scheduled"]]
            return scheduled if len(scheduled) == 2 else []

        runs = wait_for(daily, 120, "the daily drill in vouch serve", interval=0.5)
        assert {(r["scope"], r["company_id"]) for r in runs} == {("company", company_id), ("control", "")}
        assert all(r["outcome"] == "passed" for r in runs), runs
        assert "daily restore drill" in server.log()
    finally:
        cleanup(server)

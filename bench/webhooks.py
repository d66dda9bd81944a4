"""Webhook deliveries per second from one worker to a local receiver (vouch.webhooks), for `make bench`.

Runs in a subprocess with its own throwaway data directory (the embedded default): makes
a company with one endpoint pointed at a local HTTPS receiver (tests/webhooks/receiver.py,
the development certificate; loopback allowed by the tests' setting), records N events
(one delivery each, as the workflow does), then times django-tasks-db's worker, in this
one process, sending them all: queue, claim, sign (Standard Webhooks), the guarded
connection (resolution, vetting, TLS), the answer, the outcome recorded.

Measured twice: as the sender works (a connection kept for the next delivery to the
same vetted address, vouch.webhooks.egress.IDLE_SECONDS), and with nothing kept (a
new TLS connection per delivery, IDLE_SECONDS = 0) for comparison."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import harness

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    from django_tasks_db.management.commands.db_worker import Worker
    from tests.conftest import make_company
    from tests.webhooks.receiver import Receiver
    from vouch.core.context import company_context
    from vouch.tenancy import company_db
    from vouch.webhooks import receivers, services
    from vouch.webhooks.models import Delivery

    import multiprocessing
    from pathlib import Path
    from django.conf import settings
    count = int(sys.argv[1])
    if sys.argv[2] != "default":
        from vouch.webhooks import egress
        egress.IDLE_SECONDS = float(sys.argv[2])

    def serve(directory, pipe):
        # The receiver in a process of its own: it does not share the sender's interpreter lock.
        server = Receiver(Path(directory)).start()
        pipe.send(server.port)
        pipe.recv()  # until told to stop
        pipe.send(len(server.received))
        server.stop()

    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=serve, args=(str(Path(settings.VOUCH_WEBHOOKS_CA_FILE).parent), theirs), daemon=True
    )
    process.start()
    port = ours.recv()

    class Remote:
        def url(self):
            return f"https://127.0.0.1:{port}/hooks"

    receiver = Remote()
    company = make_company("Bench Hiring")
    with company_context(company):
        services.create_endpoint(url=receiver.url(), event_types=["request.created"])
        for i in range(count):
            with company_db.atomic():
                receivers.record_event(company.pk, "request.created", request_id=f"{i:08d}-0000-4000-8000-000000000000",
                                       status="awaiting_candidate")
    worker = Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    max_tasks=None, worker_id="bench", excluded_queue_names=[])
    started, cpu_started = time.perf_counter(), time.process_time()
    worker.run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    with company_context(company):
        delivered = Delivery.objects.filter(status="delivered").count()
    ours.send("stop")
    received = ours.recv()
    process.join(10)
    print(json.dumps({"deliveries": count, "delivered": delivered, "received": received,
                      "seconds": elapsed, "per_second": delivered / elapsed,
                      "cpu_seconds": cpu, "per_cpu_second": delivered / cpu}))
    """
)

TARGET_PER_SECOND = 200.0


def measure_deliveries(count: int = 1000, fresh_count: int = 300) -> dict:
    """Deliveries per second as the sender works, and with a new connection each."""
    load_start = os.getloadavg()
    measured = _measure(count, "default")
    measured["fresh_connections"] = _measure(fresh_count, "0")
    measured["load_start"], measured["load_end"] = load_start, os.getloadavg()
    return measured


def _measure(count: int, idle_seconds: str) -> dict:
    # imported here: the certificate is made before the child's settings read its path
    from vouch.web.tls import ensure_dev_certificate

    with harness.scratch_dir("vouch-bench-webhooks-") as data_dir:
        cert, _ = ensure_dev_certificate(Path(data_dir) / "receiver")
        env = harness.django_env(
            data_dir,
            VOUCH_WEBHOOKS_ALLOW_NETWORKS="127.0.0.1/32",
            VOUCH_WEBHOOKS_CA_FILE=str(cert),
            VOUCH_TASKS_BACKEND="database",
        )
        measured = harness.run_script(
            SCRIPT, [str(count), idle_seconds], env, what="webhook delivery benchmark", timeout=900
        )
    measured["target_per_second"] = TARGET_PER_SECOND
    measured["met"] = measured["delivered"] == count and measured["per_second"] >= TARGET_PER_SECOND
    return measured


def describe(measured: dict) -> str:
    fresh = measured["fresh_connections"]
    return (
        f"webhook deliveries from one worker to a local receiver: {measured['per_second']:.0f}/s "
        f"({measured['delivered']} of {measured['deliveries']} delivered in {measured['seconds']:.1f} s; "
        f"{measured['per_cpu_second']:.0f} per CPU second of the sender); "
        f"target ≥ {measured['target_per_second']:g}/s: {harness.verdict(measured['met'])}\n"
        f"  with a new connection per delivery: {fresh['per_second']:.0f}/s ({fresh['delivered']} of "
        f"{fresh['deliveries']}; {fresh['per_cpu_second']:.0f} per CPU second)\n"
        f"  load average at start {harness.loads(measured['load_start'], '.2f')}, at end "
        f"{harness.loads(measured['load_end'], '.2f')} ({os.cpu_count()} CPUs, shared)"
    )


if __name__ == "__main__":
    print(describe(measure_deliveries(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))

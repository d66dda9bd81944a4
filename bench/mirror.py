"""The constant mirror's figures for `make bench` (vouch.backups.mirror, issue #16, P7).

Two live `vouch serve` (the embedded SQLite default), one with the mirror (Litestream,
its default target VOUCH_DATA_DIR/mirror) and one with VOUCH_SERVE_MIRROR=0, each with
a company whose referees autosave through the real questionnaire (bench/workflow.py's
set-up and wrk script, REFEREES referees).

1. Autosave throughput, mirror on vs off: wrk POSTs autosaves to each server,
   back to back in alternating order, for --rounds rounds; the medians' ratio (target
   >= 0.9), and each round's.
2. Recovery point under that load: in a wrk autosave run of its own on the mirrored
   server (each round, after the throughput runs, so the probe costs them nothing), a probe
   commits a marker into the same company database every PROBE_EVERY seconds and
   measures the time from its commit to the mirror holding it. How "holding it" is
   known, cheaply and exactly: after its commit the probe reads the WAL's frame headers
   from where it last stopped, to the end of the last committed transaction (with the
   WAL's salts); Litestream writes into the header of every LTX file it uploads which
   WAL range (offset, size, salts) the file covers. A poller lists the mirror's level-0
   directory every POLL_SECONDS and reads the 100-byte header of each new file; the
   marker is mirrored once a file with its salts reaches past its commit's end (the
   probe does not wait for that: its markers are resolved as the files come). (The
   end read may include app commits made just after the marker: that can only make the
   measured time longer.) Target p99 <= 1 s.

Run alone: .venv/bin/python bench/run.py --only mirror   (quick: --duration 3s --rounds 1)
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import threading
import time
import uuid
from pathlib import Path

from vouch.backups.mirror.lag import WalCursor, ltx_reach

TARGET_RECOVERY_P99_MS = 1000.0
TARGET_THROUGHPUT_RATIO = 0.9
REFEREES = 100
PROBE_EVERY = 0.05
POLL_SECONDS = 0.005


def say(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


class MirrorWatch:
    """Which WAL range the mirror holds, per WAL generation (salts), from LTX headers;
    resolves the probe's pending commits into recovery point samples (ms)."""

    def __init__(self, level0: Path) -> None:
        self.level0, self.seen, self.reached = level0, set(), {}
        self.pending: list[tuple[tuple[int, int], int, float]] = []
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def expect(self, salts: tuple[int, int], end: int, committed: float) -> None:
        with self.lock:
            self.pending.append((salts, end, committed))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                names = [entry.name for entry in os.scandir(self.level0) if entry.name.endswith(".ltx")]
            except FileNotFoundError:
                names = []
            for name in names:
                if name in self.seen:
                    continue
                try:
                    salts, reach = ltx_reach(self.level0 / name)
                except FileNotFoundError:
                    continue
                self.seen.add(name)
                self.reached[salts] = max(self.reached.get(salts, 0), reach)
            now = time.monotonic()
            with self.lock:
                left = []
                for salts, end, committed in self.pending:
                    if self.reached.get(salts, 0) >= end:
                        self.samples.append((now - committed) * 1000)
                    else:
                        left.append((salts, end, committed))
                self.pending = left
            time.sleep(POLL_SECONDS)

    def drain(self, timeout: float = 30.0) -> int:
        """Wait for the pending commits to be mirrored; how many were not, in ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending:
                    break
            time.sleep(0.05)
        self.stop.set()
        with self.lock:
            return len(self.pending)


def probe(database: Path, watch: MirrorWatch, stop: threading.Event) -> None:
    """A marker committed every PROBE_EVERY seconds, each one's WAL end handed to ``watch``."""
    connection = sqlite3.connect(database, timeout=20, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS bench_mirror_probe (n INTEGER PRIMARY KEY AUTOINCREMENT, at REAL)")
    cursor = WalCursor(Path(f"{database}-wal"))
    try:
        while not stop.is_set():
            connection.execute("INSERT INTO bench_mirror_probe (at) VALUES (?)", (time.time(),))  # autocommit
            committed = time.monotonic()
            salts, end = cursor.committed_end()
            watch.expect(salts, end, committed)
            stop.wait(PROBE_EVERY)
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(args, bench) -> dict:
    import workflow

    workflow.REFEREES = REFEREES  # the same autosave, fewer referees to set up
    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg(), "referees": REFEREES}
    servers = {
        "mirror_off": bench.make_server(extra_env={"VOUCH_SERVE_MIRROR": "0"}, workers=args.workers),
        "mirror_on": bench.make_server(workers=args.workers),
    }
    try:
        setups, databases = {}, {}
        for name, server in servers.items():
            server.start()
            tag = uuid.uuid4().hex[:8]
            email = f"bench-mirror-{tag}@example.com"
            member = bench.helpers.create_member(server, email, f"Mirror Bench {tag}")
            setups[name] = workflow.questionnaire_setup(bench, args, server, member["company_id"], email, tag)
            databases[name] = Path(server.data_dir) / "regions" / "eu" / "companies" / f"{member['company_id']}.sqlite3"
        on = servers["mirror_on"]
        level0 = Path(on.data_dir) / "mirror" / "regions" / "eu" / databases["mirror_on"].name / "ltx" / "0"
        for name, server in servers.items():
            url = f"{server.url}/r/{setups[name]['tokens'][0]}/answers/"
            say(f"warm-up autosave {name} ({args.warmup:g}s), {workflow.load()}")
            bench.run_wrk(url, args, args.warmup, script=setups[name]["scripts"]["POST"])
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        samples: list[float] = []
        missed = 0

        def autosaves(name: str) -> dict:
            server = servers[name]
            url = f"{server.url}/r/{setups[name]['tokens'][0]}/answers/"
            measured = bench.run_wrk(url, args, args.duration, script=setups[name]["scripts"]["POST"])
            if measured["non_2xx_3xx"] or measured["socket_errors"]:
                raise RuntimeError(f"autosave errors under {name}: {measured}")
            return measured

        for round_number in range(1, args.rounds + 1):
            # Throughput: the two servers back to back, in alternating order (the machine's
            # load drifts); nothing else of the bench's runs meanwhile.
            order = list(servers) if round_number % 2 else list(reversed(servers))
            for name in order:
                litestream = json.loads((Path(on.data_dir) / "mirror-state.json").read_text())["pid"]
                before = cpu_seconds(litestream)
                measured = autosaves(name)
                if name == "mirror_on":
                    # What the mirror costs, whatever else the machine runs: Litestream's CPU.
                    measured["litestream_cpu_share"] = (cpu_seconds(litestream) - before) / args.duration
                measured["round"] = round_number
                runs[name].append(measured)
                say(
                    f"round {round_number} autosave {name:<10} {measured['requests_per_s']:8.1f} req/s  "
                    f"p99 {measured['p99_ms']:7.2f} ms  ({workflow.load()})"
                )
            # The recovery point: a run of its own under the same load on the mirrored server,
            # the probe and the mirror's poller beside it.
            watch, stop = MirrorWatch(level0), threading.Event()
            threads = [
                threading.Thread(target=watch.run, daemon=True),
                threading.Thread(target=probe, args=(databases["mirror_on"], watch, stop)),
            ]
            for thread in threads:
                thread.start()
            try:
                autosaves("mirror_on")
            finally:
                stop.set()
                threads[1].join()
            missed += watch.drain()
            samples += watch.samples
            say(
                f"round {round_number} recovery point: {len(watch.samples)} commits, "
                f"p99 so far {percentile(samples, 99):.0f} ms ({workflow.load()})"
            )
        if not samples:
            raise RuntimeError("no recovery point sample: is the mirror running?")
        medians = {name: bench.median_of(found) for name, found in runs.items()}
        results["autosave"] = {name: {"median": medians[name], "runs": runs[name]} for name in runs}
        results["throughput_ratio"] = medians["mirror_on"]["requests_per_s"] / medians["mirror_off"]["requests_per_s"]
        pairs = zip(runs["mirror_on"], runs["mirror_off"], strict=True)
        results["throughput_ratio_per_round"] = [on["requests_per_s"] / off["requests_per_s"] for on, off in pairs]
        shares = [run["litestream_cpu_share"] for run in runs["mirror_on"]]
        results["litestream_cpu_share"] = statistics.median(shares)
        results["recovery_point_ms"] = {
            "samples": len(samples),
            "missed": missed,
            "p50": statistics.median(samples),
            "p90": percentile(samples, 90),
            "p99": percentile(samples, 99),
            "max": max(samples),
        }
    except Exception:
        import sys

        for name, server in servers.items():
            if server.process is not None:
                print(f"--- {name} server log (tail) ---\n{server.log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for server in servers.values():
            bench.cleanup(server)
    results["load_end"] = os.getloadavg()
    point = results["recovery_point_ms"]
    results["targets"] = {
        "met": {
            "recovery_point_p99": point["p99"] <= TARGET_RECOVERY_P99_MS and not point["missed"],
            "autosave_mirror_ratio": results["throughput_ratio"] >= TARGET_THROUGHPUT_RATIO,
        }
    }
    return results


def table_rows(results: dict) -> list[str]:
    rows = []
    off = results["autosave"]["mirror_off"]["median"]
    for name in ("mirror_off", "mirror_on"):
        m = results["autosave"][name]["median"]
        ratio = m["requests_per_s"] / off["requests_per_s"]
        rows.append(
            f"{'autosave ' + name.replace('_', ' '):<22} {m['requests_per_s']:>10.1f} {m['p50_ms']:>9.2f} "
            f"{m['p99_ms']:>9.2f} {ratio:>7.2f}"
        )
    return rows


def describe(results: dict) -> list[str]:
    point, met = results["recovery_point_ms"], results["targets"]["met"]
    verdict = {True: "met", False: "MISSED"}
    return [
        f"mirror: recovery point under the autosave load ({point['samples']} commits probed, "
        f"{point['missed']} not mirrored within 30 s): p50 {point['p50']:.0f} ms, p90 {point['p90']:.0f} ms, "
        f"p99 {point['p99']:.0f} ms, max {point['max']:.0f} ms (target p99 <= {TARGET_RECOVERY_P99_MS:.0f} ms: "
        f"{verdict[met['recovery_point_p99']]})",
        f"mirror: autosave throughput with the mirror on / off: {results['throughput_ratio']:.2f} "
        f"(target >= {TARGET_THROUGHPUT_RATIO}: {verdict[met['autosave_mirror_ratio']]}; per round "
        + ", ".join(f"{ratio:.2f}" for ratio in results["throughput_ratio_per_round"])
        + f"); Litestream used {results['litestream_cpu_share'] * 100:.1f}% of a core meanwhile (median)",
    ]

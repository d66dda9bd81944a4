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
   measured time longer.) A marker whose WAL generation ended before a header covered it
   (see MirrorWatch) is timed by restoring copies of the mirror's files. At the end of
   each round the mirror is restored and every marker must be in it. Target p99 <= 1 s,
   none missing.

Run alone: .venv/bin/python bench/run.py --only mirror   (quick: --duration 3s --rounds 1)
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import harness
from harness import cpu_seconds, helpers, load_text, say
from vouch.backups.mirror.lag import WalCursor, ltx_reach

TARGET_RECOVERY_P99_MS = 1000.0
TARGET_THROUGHPUT_RATIO = 0.9
REFEREES = 100
PROBE_EVERY = 0.05
POLL_SECONDS = 0.005
COPY_EVERY = 0.02  # the mirror's files kept at most this often while a commit is unsure
COPY_FOR = 5.0


class MirrorWatch:
    """Which WAL range the mirror holds, per WAL generation (salts), from LTX headers;
    resolves the probe's pending commits into recovery point samples (ms).

    A commit is mirrored once a level-0 file of its WAL generation reaches past its end.
    That is not always how a commit reaches the mirror: when SQLite starts the WAL over
    (a checkpoint) just after a commit, Litestream can carry that commit in the first
    files of the new generation, whose headers name only the new generation's range
    (measured: about 1 probed commit in 230 under the autosave load; each one was in the
    restored mirror, and the copies found it in new-generation files). So once
    a file of a later generation exists (SQLite increments salt-1 at each WAL reset) and
    the commit is still not covered, the mirror's files are kept as they are at each
    change (hard links, every COPY_EVERY at most) until the commit's generation is
    COPY_FOR seconds behind; :meth:`settle` then restores those copies to find the first
    one that holds the commit: its time is the sample. Compacted files (level 1 and up)
    carry no WAL range (their salts are 0): only the copies' restores read them."""

    def __init__(self, replica: Path, copies: Path) -> None:
        self.replica, self.copies = replica, copies
        self.level0 = replica / "ltx" / "0"
        self.seen, self.reached = set(), {}
        self.newest_salt1 = -1
        self.pending: list[tuple[tuple[int, int], int, float, int]] = []
        self.unsure: list[tuple[int, float, float]] = []  # (marker, committed, copy until)
        self.kept: list[tuple[float, Path]] = []  # (when, copy of the mirror's files)
        self.samples: list[float] = []
        self.markers: set[int] = set()  # every marker resolved
        self.by_restore = 0  # resolved by restoring copies
        self.notes: list = []  # how they were found
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def expect(self, salts: tuple[int, int], end: int, committed: float, marker: int) -> None:
        with self.lock:
            self.pending.append((salts, end, committed, marker))

    def look(self) -> int:
        """Read the new level-0 files' headers; how many there were."""
        try:
            names = [entry.name for entry in os.scandir(self.level0) if entry.name.endswith(".ltx")]
        except FileNotFoundError:
            names = []
        new = 0
        for name in names:
            if name in self.seen:
                continue
            try:
                salts, reach = ltx_reach(self.level0 / name)
            except (FileNotFoundError, struct.error):
                continue  # gone already, or not whole yet (looked at again next turn)
            self.seen.add(name)
            new += 1
            self.reached[salts] = max(self.reached.get(salts, 0), reach)
            if salts != (0, 0):
                self.newest_salt1 = max(self.newest_salt1, salts[0])
        return new

    def keep(self) -> None:
        """A copy of the mirror's files as they are now (hard links: cheap)."""
        now = time.monotonic()
        copy = self.copies / f"{len(self.kept):06d}"
        # Level 0 first: compaction writes a level-1 file before it deletes the level-0
        # ones it holds, so those are then found in one level or the other.
        for level in sorted((self.replica / "ltx").iterdir(), key=lambda path: int(path.name)):
            (copy / "ltx" / level.name).mkdir(parents=True)
            for path in level.glob("*.ltx"):
                with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
                    os.link(path, copy / "ltx" / level.name / path.name)
        self.kept.append((now, copy))

    def run(self) -> None:
        last_copy = 0.0
        while not self.stop.is_set():
            new = self.look()
            now = time.monotonic()
            with self.lock:
                left = []
                for salts, end, committed, marker in self.pending:
                    if self.reached.get(salts, 0) >= end:
                        self.samples.append((now - committed) * 1000)
                        self.markers.add(marker)
                    elif self.newest_salt1 > salts[0]:
                        self.unsure.append((marker, committed, now + COPY_FOR))
                        new = new or 1  # a copy now, whatever happened before
                    else:
                        left.append((salts, end, committed, marker))
                self.pending = left
                copying = any(until > now for _, _, until in self.unsure)
            if copying and new and now - last_copy >= COPY_EVERY:
                self.keep()
                last_copy = now
            time.sleep(POLL_SECONDS)

    def drain(self, timeout: float = 30.0) -> list:
        """Wait for the pending commits to be mirrored; those that were not, in ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending and all(until <= time.monotonic() for _, _, until in self.unsure):
                    break
            time.sleep(0.05)
        self.stop.set()
        with self.lock:
            return list(self.pending)

    def settle(self) -> list[int]:
        """The unsure commits: each one's sample from the first copy whose restore holds
        it (a binary search: a copy holds every commit an earlier one held); those no copy
        holds are returned."""
        held: dict[int, set[int]] = {}

        def holds(index: int, marker: int) -> bool:
            if index not in held:
                copy = self.kept[index][1]
                held[index] = restored_markers(copy, copy.with_suffix(".sqlite3"), quiet=True)
            return marker in held[index]

        missing = []
        for marker, committed, _ in self.unsure:
            low = next((i for i, (when, _) in enumerate(self.kept) if when >= committed), len(self.kept))
            high = len(self.kept)
            while low < high:
                middle = (low + high) // 2
                if holds(middle, marker):
                    high = middle
                else:
                    low = middle + 1
            if low == len(self.kept):
                missing.append(marker)
                continue
            self.samples.append((self.kept[low][0] - committed) * 1000)
            self.markers.add(marker)
            self.by_restore += 1
            # What came with it: the level-0 files new in that copy, as (name, salts, WAL reach).
            before = {p.name for p in (self.kept[low - 1][1] / "ltx" / "0").glob("*.ltx")} if low else set()
            arrived = sorted(p for p in (self.kept[low][1] / "ltx" / "0").glob("*.ltx") if p.name not in before)
            self.notes.append(
                (marker, round((self.kept[low][0] - committed) * 1000), [(p.name, *ltx_reach(p)) for p in arrived])
            )
        return missing


def probe(database: Path, watch: MirrorWatch, stop: threading.Event) -> None:
    """A marker committed every PROBE_EVERY seconds, each one's WAL end handed to ``watch``."""
    connection = sqlite3.connect(database, timeout=20, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS bench_mirror_probe (n INTEGER PRIMARY KEY AUTOINCREMENT, at REAL)")
    cursor = WalCursor(Path(f"{database}-wal"))
    try:
        while not stop.is_set():
            marker = connection.execute("INSERT INTO bench_mirror_probe (at) VALUES (?)", (time.time(),)).lastrowid
            committed = time.monotonic()
            salts, end = cursor.committed_end()
            watch.expect(salts, end, committed, marker)
            stop.wait(PROBE_EVERY)
    finally:
        connection.close()


def restored_markers(replica: Path, to: Path, quiet: bool = False) -> set[int]:
    """The probe's markers in the database restored from ``replica`` (Litestream's copy)."""
    from vouch.backups.mirror import plan

    done = subprocess.run(
        [str(plan.litestream_binary()), "restore", "-o", str(to), plan.litestream_url(str(replica))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        if quiet:  # a copy of the mirror taken mid-change: holds nothing that counts
            return set()
        raise RuntimeError(f"the mirror could not be restored: {done.stderr.strip()[-300:]}")
    connection = sqlite3.connect(f"{to.as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute("SELECT n FROM bench_mirror_probe")}
    finally:
        connection.close()


def measure(args) -> dict:
    import workflow

    workflow.REFEREES = REFEREES  # the same autosave, fewer referees to set up
    results: dict = {"cpus": os.cpu_count(), "load_start": os.getloadavg(), "referees": REFEREES}
    servers = {
        "mirror_off": harness.make_server(extra_env={"VOUCH_SERVE_MIRROR": "0"}, workers=args.workers),
        "mirror_on": harness.make_server(workers=args.workers),
    }
    with contextlib.ExitStack() as stack:
        for name, server in servers.items():
            stack.enter_context(harness.serving(server, f"{name} server", 3000))
        setups, databases = {}, {}
        for name, server in servers.items():
            server.start()
            tag = uuid.uuid4().hex[:8]
            email = f"bench-mirror-{tag}@example.com"
            member = helpers.create_member(server, email, f"Mirror Bench {tag}")
            setups[name] = workflow.questionnaire_setup(args, server, member["company_id"], email, tag)
            databases[name] = Path(server.data_dir) / "regions" / "eu" / "companies" / f"{member['company_id']}.sqlite3"
        on = servers["mirror_on"]
        replica = Path(on.data_dir) / "mirror" / "regions" / "eu" / databases["mirror_on"].name
        for name, server in servers.items():
            url = f"{server.url}/r/{setups[name]['tokens'][0]}/answers/"
            say(f"warm-up autosave {name} ({args.warmup:g}s), {load_text()}")
            harness.run_wrk(url, args, args.warmup, script=setups[name]["scripts"]["POST"])
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        samples: list[float] = []
        missed = restore_lost = by_restore = 0

        def autosaves(name: str) -> dict:
            server = servers[name]
            url = f"{server.url}/r/{setups[name]['tokens'][0]}/answers/"
            measured = harness.run_wrk(url, args, args.duration, script=setups[name]["scripts"]["POST"])
            if measured["non_2xx_3xx"] or measured["socket_errors"]:
                raise RuntimeError(f"autosave errors under {name}: {measured}")
            return measured

        for round_number in range(1, args.rounds + 1):
            # Throughput: the two servers back to back, in alternating order (the machine's
            # load drifts); nothing else of the bench's runs meanwhile.
            order = list(servers) if round_number % 2 else list(reversed(servers))
            for name in order:
                litestream = json.loads((Path(on.data_dir) / "mirror-state.json").read_text())["pid"]
                # `vouch serve` itself (not its app workers): the live set's thread, which
                # hears of every commit, runs there.
                supervisor = servers[name].process.pid
                before, supervisor_before = cpu_seconds(litestream), cpu_seconds(supervisor)
                measured = autosaves(name)
                measured["serve_cpu_share"] = (cpu_seconds(supervisor) - supervisor_before) / args.duration
                if name == "mirror_on":
                    # What the mirror costs, whatever else the machine runs: Litestream's CPU.
                    measured["litestream_cpu_share"] = (cpu_seconds(litestream) - before) / args.duration
                measured["round"] = round_number
                runs[name].append(measured)
                say(
                    f"round {round_number} autosave {name:<10} {measured['requests_per_s']:8.1f} req/s  "
                    f"p99 {measured['p99_ms']:7.2f} ms  serve {measured['serve_cpu_share']:.1%} of a core  "
                    f"({load_text()})"
                )
            # The recovery point: a run of its own under the same load on the mirrored server,
            # the probe and the mirror's poller beside it.
            watch, stop = MirrorWatch(replica, Path(on.data_dir) / f"bench-copies-{round_number}"), threading.Event()
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
            left = watch.drain()
            unsure = len(watch.unsure)
            left_markers = [entry[3] for entry in left] + watch.settle()
            missed += len(left_markers)
            samples += watch.samples
            by_restore += watch.by_restore
            # The check: every marker committed is in the database restored from the mirror.
            committed = watch.markers | set(left_markers)
            lost = sorted(committed - restored_markers(replica, Path(on.data_dir) / f"bench-restore-{round_number}"))
            restore_lost += len(lost)
            say(
                f"round {round_number} restore check: {len(committed) - len(lost)} of {len(committed)} markers "
                f"in the restored copy (lost: {lost}); {unsure} not covered by a header of their WAL generation, "
                f"{watch.by_restore} of them found in a copy of the mirror ({len(watch.kept)} copies); "
                f"not mirrored within 30 s: {left_markers}"
            )
            for note in watch.notes:
                say(f"  marker {note[0]}: in the mirror after {note[1]} ms, with the level-0 files {note[2]}")
            say(
                f"round {round_number} recovery point: {len(watch.samples)} commits, "
                f"p99 so far {harness.percentile_index(samples, 99):.0f} ms ({load_text()})"
            )
        if not samples:
            raise RuntimeError("no recovery point sample: is the mirror running?")
        medians = {name: harness.median_of(found) for name, found in runs.items()}
        results["autosave"] = {name: {"median": medians[name], "runs": runs[name]} for name in runs}
        results["throughput_ratio"] = medians["mirror_on"]["requests_per_s"] / medians["mirror_off"]["requests_per_s"]
        pairs = zip(runs["mirror_on"], runs["mirror_off"], strict=True)
        results["throughput_ratio_per_round"] = [on["requests_per_s"] / off["requests_per_s"] for on, off in pairs]
        shares = [run["litestream_cpu_share"] for run in runs["mirror_on"]]
        results["litestream_cpu_share"] = statistics.median(shares)
        results["recovery_point_ms"] = {
            "samples": len(samples),
            "missed": missed,
            "lost_in_restore": restore_lost,
            "found_by_restore": by_restore,
            "p50": statistics.median(samples),
            "p90": harness.percentile_index(samples, 90),
            "p99": harness.percentile_index(samples, 99),
            "max": max(samples),
        }
    results["load_end"] = os.getloadavg()
    point = results["recovery_point_ms"]
    results["targets"] = {
        "met": {
            "recovery_point_p99": (
                point["p99"] <= TARGET_RECOVERY_P99_MS and not point["missed"] and not point["lost_in_restore"]
            ),
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
        rows.append(harness.server_row("autosave " + name.replace("_", " "), m, ratio))
    return rows


def describe(results: dict) -> list[str]:
    point, met = results["recovery_point_ms"], results["targets"]["met"]
    verdict = {True: "met", False: "MISSED"}
    return [
        f"mirror: recovery point under the autosave load ({point['samples']} commits probed, "
        f"{point['missed']} not mirrored within 30 s, {point['lost_in_restore']} missing from the restored copy; "
        f"{point['found_by_restore']} found by restoring copies of the mirror): "
        f"p50 {point['p50']:.0f} ms, p90 {point['p90']:.0f} ms, "
        f"p99 {point['p99']:.0f} ms, max {point['max']:.0f} ms (target p99 <= {TARGET_RECOVERY_P99_MS:.0f} ms: "
        f"{verdict[met['recovery_point_p99']]})",
        f"mirror: autosave throughput with the mirror on / off: {results['throughput_ratio']:.2f} "
        f"(target >= {TARGET_THROUGHPUT_RATIO}: {verdict[met['autosave_mirror_ratio']]}; per round "
        + ", ".join(f"{ratio:.2f}" for ratio in results["throughput_ratio_per_round"])
        + f"); Litestream used {results['litestream_cpu_share'] * 100:.1f}% of a core meanwhile (median)",
    ]

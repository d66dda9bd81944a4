"""A flood and a normal client, for `make bench` (vouch.shield.limits, docs/security/limits.md).

One `vouch serve` with the default request limits, believing X-Forwarded-For from this
machine (VOUCH_TRUSTED_PROXIES=127.0.0.1). A normal client (a member of another company,
from an address of its own, one keep-alive connection) measures its own latency on its
dashboard, first alone, then while wrk floods the server from 1,024 forwarded addresses
in 4 /24 networks: the sign-in page, a referee link page with a made-up token and a
signed-in page of the flooder's own account, in turn. Reported: the normal client's p99
under the flood over its p99 alone, in the same run (target at most 3), and what the
flood got back (mostly 429)."""

from __future__ import annotations

import http.client
import statistics
import subprocess
import textwrap
import threading
import time
import uuid
from pathlib import Path

import harness
from harness import helpers, verdict

TARGET_RATIO = 3.0
NORMAL_ADDRESS = "198.51.100.7"

LUA = textwrap.dedent(
    """
    local paths = {{"/accounts/login/", "/r/{token}/", "/dashboard/"}}
    local n = 0
    request = function()
      n = n + 1
      local a = n % 1024
      wrk.headers["X-Forwarded-For"] = string.format("10.77.%d.%d", math.floor(a / 256), a % 256)
      local path = paths[n % 3 + 1]
      if path == "/dashboard/" then
        wrk.headers["Cookie"] = "{cookie}"
      else
        wrk.headers["Cookie"] = nil
      end
      return wrk.format("GET", path)
    end
    statuses = {{}}
    response = function(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
    end
    -- Each wrk thread counts in its own Lua state; done() reads them through setup's handles.
    local threads = {{}}
    setup = function(thread)
      table.insert(threads, thread)
    end
    done = function(summary, latency, requests)
      for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do
          io.write(string.format("status %d %d\\n", status, count))
        end
      end
    end
    """
)


def _normal_client(server, cookie: str, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """Sequential GETs of the dashboard on one keep-alive connection: each one's seconds."""
    context = helpers.tls_context(server)
    connection = http.client.HTTPSConnection("localhost", server.https_port, context=context, timeout=30)
    headers = {"Cookie": cookie, "X-Forwarded-For": NORMAL_ADDRESS}
    taken: list[float] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            started = time.perf_counter()
            connection.request("GET", "/dashboard/", headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the normal client got {response.status}")
            taken.append(time.perf_counter() - started)
            time.sleep(0.02)  # a person's pace, not a second flood
    finally:
        connection.close()
    return taken


def _wrk(url: str, args, duration: float, script: str) -> str:
    """wrk's output as it printed it (harness.run_wrk parses it; the statuses need the text)."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(duration))}s"]
    command += ["--timeout", "10s", "--latency", "-s", script, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _p99_ms(taken: list[float]) -> float:
    return harness.percentile(taken, 99) * 1000


def measure(args) -> dict:
    # Every limit at its default (an empty value is the default): none of BENCH_LIMITS.
    env = {"VOUCH_TRUSTED_PROXIES": "127.0.0.1", **dict.fromkeys(harness.BENCH_LIMITS, "")}
    env |= dict(item.split("=", 1) for item in args.env)  # --env: settings tried against the flood
    with harness.serving(harness.make_server(extra_env=env, workers=args.workers)) as server:
        server.start()
        _, normal_cookie = harness.prepare_member(server)
        _, flood_cookie = harness.prepare_member(server)
        duration = max(5.0, args.duration)
        print(f"flood: the normal client alone ({duration:g}s)", flush=True)
        alone = _normal_client(server, normal_cookie, duration)
        script = Path(server.data_dir) / "flood.lua"
        script.write_text(LUA.format(token=uuid.uuid4().hex, cookie=flood_cookie))
        flooded: list[float] = []
        measuring = threading.Thread(
            target=lambda: flooded.extend(_normal_client(server, normal_cookie, duration - 1)), daemon=True
        )
        print(f"flood: wrk -c{args.connections} from 1024 addresses, the normal client beside it", flush=True)
        threading.Timer(0.5, measuring.start).start()
        output = _wrk(f"{server.url}/", args, duration, str(script))
        measuring.join(30)
    flood = harness.parse_wrk(output)
    counted = (line.split()[1:] for line in output.splitlines() if line.startswith("status "))
    statuses: dict[int, int] = {}
    for status, count in counted:
        statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    ratio = _p99_ms(flooded) / _p99_ms(alone) if alone and flooded else float("inf")
    return {
        "normal_alone": {"requests": len(alone), "p50_ms": statistics.median(alone) * 1000, "p99_ms": _p99_ms(alone)},
        "normal_flooded": {
            "requests": len(flooded),
            "p50_ms": statistics.median(flooded) * 1000 if flooded else None,
            "p99_ms": _p99_ms(flooded) if flooded else None,
        },
        "flood": {**flood, "statuses": statuses},
        "p99_ratio": ratio,
        "targets": {"flood_p99_ratio_max": TARGET_RATIO, "met": {"flood_p99_ratio": ratio <= TARGET_RATIO}},
    }


def describe(measured: dict) -> list[str]:
    alone, flooded, flood = measured["normal_alone"], measured["normal_flooded"], measured["flood"]
    refused = flood["statuses"].get(429, 0)
    total = sum(flood["statuses"].values()) or 1
    return [
        f"flood (1024 addresses: sign-in, link, signed-in page): {flood['requests_per_s']:.0f} req/s, "
        f"{refused / total:.0%} answered 429",
        f"  normal client alone p50 {alone['p50_ms']:.1f} ms p99 {alone['p99_ms']:.1f} ms; during the flood "
        f"p50 {flooded['p50_ms'] or 0:.1f} ms p99 {flooded['p99_ms'] or 0:.1f} ms: p99 x{measured['p99_ratio']:.1f}, "
        f"target <= {TARGET_RATIO:g}: {verdict(measured['targets']['met']['flood_p99_ratio'])}",
    ]

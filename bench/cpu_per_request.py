"""CPU time the gateway spends per proxied request on a public route, for one or more checkouts.

    python -m bench.cpu_per_request [--seconds 10] CHECKOUT [CHECKOUT ...]

Each checkout (a directory with a `gateway/` package, e.g. a `git worktree` of an older
commit) serves one public route to an nginx `return 200` upstream, one worker (or
`--workers N`, the CPU of all counted), uvloop, no access log; wrk drives it; the
gateway's user+system CPU time (from /proc) divided by the requests served is printed.
CPU per request is less sensitive than req/s to other load on the machine, but on a busy
2-vCPU host it still moves by 10-20 % between runs; the load
average is printed beside each figure all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and of its living children (a supervisor's workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / TICKS
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += _cpu_seconds(int(child))
    return total


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _nginx(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {workdir}/nginx.pid; error_log stderr;\n"
        f"events {{}} http {{ access_log off; server {{ listen 127.0.0.1:{port};\n"
        f"location / {{ return 200 '{'x' * 100}'; }} }} }}\n"
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)])
    _wait(f"http://127.0.0.1:{port}/")
    return proc, port


def measure(
    checkout: Path, upstream: int, seconds: int, workdir: Path, workers: int = 1
) -> dict[str, float]:
    port = _free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port, "workers": workers},
        "logging": {"access_log": False, "level": "warning"},
        "metrics": {"listen": None},
        "routes": [{"path": "/", "upstream": f"http://127.0.0.1:{upstream}", "auth": "public"}],
    }
    path = workdir / f"gw-{port}.yaml"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    gw = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(path)], cwd=checkout, env=env
    )
    try:
        _wait(f"http://127.0.0.1:{port}/_gateway/healthz")
        url = f"http://127.0.0.1:{port}/static/app.js"
        subprocess.run(["wrk", "-t1", "-c20", "-d2s", url], check=True, capture_output=True)
        before = _cpu_seconds(gw.pid)
        command = ["wrk", "-t1", "-c20", f"-d{seconds}s", url]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        used = _cpu_seconds(gw.pid) - before
        requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
        return {
            "requests": requests,
            "req_per_s": requests / seconds,
            "cpu_us_per_request": used / requests * 1e6,
            "load_average": os.getloadavg()[0],
        }
    finally:
        gw.terminate()
        gw.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (2+: metrics in multiprocess mode)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        nginx, upstream = _nginx(workdir)
        try:
            for round_ in range(args.rounds):
                for checkout in args.checkouts:
                    result = measure(
                        checkout.resolve(), upstream, args.seconds, workdir, args.workers
                    )
                    print(json.dumps({"round": round_, "checkout": str(checkout), **result}))
        finally:
            nginx.terminate()
            nginx.wait(10)


if __name__ == "__main__":
    main()

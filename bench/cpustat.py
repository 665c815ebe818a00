#!/usr/bin/env python3
"""CPU accounting on a shared machine (Linux /proc): how much of it the bench had.

"ours" = the bench's servers (the pids in bench/run/*.pid and their descendants) plus wrk
(whose CPU seconds run.sh measures with bash's `time`); "foreign" = every other CPU tick
charged to a process in the same window (another test suite, a build). irq/softirq time
(mostly loopback networking, caused by the bench itself) is reported apart.

    cpustat.py snap                         -> JSON snapshot of the counters
    cpustat.py diff SNAP1 SNAP2 [WRK_SECS]  -> JSON {busy_pct, irq_pct, ours_pct, foreign_pct}
    cpustat.py quiet [--max PCT] [--timeout SECS]
        wait (1 s windows) until the foreign load is <= PCT, at most SECS; print the last %
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
RUN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run")


def cpu_line() -> dict[str, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return {"proc": user + nice + system, "irq": irq + softirq, "steal": steal, "total": sum(v)}


def _parent(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def harness_pids() -> set[int]:
    roots: set[int] = set()
    for name in glob.glob(os.path.join(RUN_DIR, "*.pid")):
        try:
            with open(name) as f:
                roots.add(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (ppid := _parent(d)) is not None:
            children.setdefault(ppid, []).append(int(d))
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(children.get(p, []))
    return seen


def ours_ticks() -> int:
    total = 0
    for p in harness_pids():
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
        except (OSError, IndexError, ValueError):
            pass
    return total


def snap() -> dict[str, int]:
    s = cpu_line()
    s["ours"] = ours_ticks()
    return s


def diff(a: dict[str, int], b: dict[str, int], wrk_secs: float = 0.0) -> dict[str, float]:
    total = max(b["total"] - a["total"], 1)
    proc = b["proc"] - a["proc"]
    irq = b["irq"] - a["irq"]
    ours = (b["ours"] - a["ours"]) + wrk_secs * HZ

    def pct(x: float) -> float:
        return round(100.0 * x / total, 1)

    return {
        "busy_pct": pct(proc + irq),
        "irq_pct": pct(irq),
        "ours_pct": pct(ours),
        "foreign_pct": pct(max(proc - ours, 0)),
        "steal_pct": pct(b["steal"] - a["steal"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("snap")
    d = sub.add_parser("diff")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("wrk_secs", type=float, nargs="?", default=0.0)
    q = sub.add_parser("quiet")
    q.add_argument("--max", type=float, default=10.0)
    q.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    if args.cmd == "snap":
        print(json.dumps(snap()))
    elif args.cmd == "diff":
        print(json.dumps(diff(json.loads(args.a), json.loads(args.b), args.wrk_secs)))
    else:
        deadline = time.monotonic() + args.timeout
        while True:
            a = snap()
            time.sleep(1.0)
            f = diff(a, snap())["foreign_pct"]
            if f <= args.max or time.monotonic() >= deadline:
                print(f)
                return
            print(f"machine busy with other work ({f} % foreign CPU), waiting", file=sys.stderr)


if __name__ == "__main__":
    main()

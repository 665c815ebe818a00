#!/usr/bin/env python3
"""results.jsonl of bench/run.sh -> a markdown table of medians, ratios and validity.

    summarize.py results/<ts>/results.jsonl [--env env.txt] [--rss rss.txt]

Per scenario, over its runs: median req/s (min-max), median of wrk's per-run p50 and
p99, req/s relative to the bare upstream ("direct"), and for gateway scenarios req/s and
p99 relative to the matching Apache + mod_auth_openidc scenario. A run is flagged when
wrk counted errors, when the mean response size differs from the pre-checked one by
more than 5 % (e.g. 401s or 302s instead of 200s), or when the post-run check failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

NOISY_FOREIGN_PCT = 10.0
TARGETS = ("gw-cookie-redis", "gw-jwt", "gw-introspect")  # issue 14: >= 2x the peer, lower p99
TARGET_RATIO = 2.0


def load(paths: list[str]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def stats_of(rows: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["index"], r["run"])):
        by.setdefault(r["scenario"], []).append(r)
    stats: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    noisy: list[str] = []
    for name, runs in by.items():
        rps, p50, p99, busy, foreign = [], [], [], [], []
        for r in runs:
            w = r["wrk"]
            rps.append(w["requests"] / (w["duration_us"] / 1e6))
            p50.append(w["latency_us"]["p50"] / 1000)
            p99.append(w["latency_us"]["p99"] / 1000)
            busy.append(r["cpu"]["busy_pct"])
            foreign.append(r["cpu"]["foreign_pct"])
            if r["cpu"]["foreign_pct"] > NOISY_FOREIGN_PCT:
                noisy.append(f"{name} run {r['run']}: {r['cpu']['foreign_pct']} % foreign CPU")
            errs = {k: v for k, v in w["errors"].items() if v}
            per_req = w["bytes"] / max(w["requests"], 1)
            if errs:
                problems.append(f"{name} run {r['run']}: wrk errors {errs}")
            if abs(per_req - r["expected_bytes"]) > 0.05 * r["expected_bytes"]:
                problems.append(
                    f"{name} run {r['run']}: {per_req:.0f} bytes/response, "
                    f"expected {r['expected_bytes']} (not all answers were the 200)"
                )
            if r["post_status"] != 200:
                problems.append(
                    f"{name} run {r['run']}: post-run check got HTTP {r['post_status']}"
                )
        stats[name] = {
            "what": runs[0].get("what", ""),
            "peer": runs[0].get("peer") or None,
            "url": runs[0]["url"],
            "runs": len(runs),
            "rps": rps,
            "rps_med": statistics.median(rps),
            "p50": statistics.median(p50),
            "p99": statistics.median(p99),
            "busy": statistics.median(busy),
            "foreign": statistics.median(foreign),
        }
    return stats, problems, noisy


def _ratio(stats: dict[str, dict[str, Any]], name: str, base: str | None, key: str) -> float | None:
    if not base or base not in stats:
        return None
    return float(stats[name][key] / stats[base][key]) if stats[base][key] else None


def table(stats: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | what | req/s (median) | min-max | p50 ms | p99 ms | x direct "
        "| x mod_auth_openidc (req/s) | p99 vs mod_auth_openidc | CPU busy % | foreign CPU % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in stats.items():
        vs_direct = _ratio(stats, name, "direct", "rps_med")
        vs_peer = _ratio(stats, name, s["peer"], "rps_med")
        p99_peer = _ratio(stats, name, s["peer"], "p99")
        lines.append(
            f"| {name} | {s['what']} | {s['rps_med']:,.0f} "
            f"| {min(s['rps']):,.0f}-{max(s['rps']):,.0f} "
            f"| {s['p50']:.2f} | {s['p99']:.2f} "
            f"| {'-' if vs_direct is None else f'{vs_direct:.3f}'} "
            f"| {'-' if vs_peer is None else f'{vs_peer:.2f}x'} "
            f"| {'-' if p99_peer is None else f'{p99_peer:.2f}x'} "
            f"| {s['busy']:.0f} | {s['foreign']:.0f} |"
        )
    return lines


def verdicts(stats: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for name in TARGETS:
        s = stats.get(name)
        if s is None or s["peer"] not in stats:
            continue
        peer = stats[s["peer"]]
        ratio = s["rps_med"] / peer["rps_med"]
        ok = ratio >= TARGET_RATIO and s["p99"] < peer["p99"]
        out.append(
            f"- {name}: {ratio:.2f}x {s['peer']}'s req/s, p99 {s['p99']:.1f} ms vs "
            f"{peer['p99']:.1f} ms: **{'met' if ok else 'not met'}**"
        )
    plain, apache = stats.get("gw-plain"), stats.get("apache-plain")
    if plain is None or apache is None:
        return out
    ratio = plain["rps_med"] / apache["rps_med"]
    met = "met" if ratio >= 1.0 else "not met"
    out.append(f"- gw-plain: {ratio:.2f}x apache-plain's req/s (target: 1x): **{met}**")
    # What the server library allows here: every gateway route pays at least this much.
    for name, what in (("aiohttp-floor", "aiohttp"), ("raw-floor", "no HTTP library")):
        floor = stats.get(name)
        if floor is not None:
            out.append(
                f"- {name} (the upstream pool behind {what}, nothing else): "
                f"{floor['rps_med'] / apache['rps_med']:.2f}x apache-plain's req/s; "
                f"gw-plain {plain['rps_med'] / floor['rps_med']:.2f}x its req/s"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", nargs="+")
    ap.add_argument("--env", help="env.txt to print above the table")
    ap.add_argument("--rss", help="rss.txt to print below the table")
    ap.add_argument("--json", help="also write the per-scenario medians here")
    args = ap.parse_args()
    stats, problems, noisy = stats_of(load(args.results))
    out: list[str] = []
    if args.env:
        with open(args.env) as f:
            out += ["```", f.read().rstrip(), "```", ""]
    out += table(stats)
    runs = sorted({s["runs"] for s in stats.values()})
    out += [
        "",
        f"Runs per scenario: {'/'.join(map(str, runs))}; p50/p99: median over the runs of wrk's "
        "per-run percentiles; x mod_auth_openidc: against the Apache scenario of the same kind; "
        "CPU busy / foreign: share of both CPUs busy / used by processes outside the bench.",
        "",
        "Targets (issue 14: at least 2x mod_auth_openidc's req/s with a lower p99; the public"
        " route at least Apache's plain proxy):",
        *verdicts(stats),
        "",
    ]
    if args.rss:
        with open(args.rss) as f:
            out += ["Gateway memory (RSS of all its processes):", "", f.read().rstrip(), ""]
    if problems:
        out += ["**Invalid runs:**", *(f"- {p}" for p in problems), ""]
    else:
        out += [
            "Validity: every run error-free, every response the pre-checked 200, "
            "post-run checks 200.",
            "",
        ]
    if noisy:
        out += [
            f"Noisy runs (> {NOISY_FOREIGN_PCT:.0f} % of the CPUs used by other work):",
            *(f"- {n}" for n in noisy),
            "",
        ]
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {**v, "rps": v["rps"]} for k, v in stats.items()}, f, indent=1)


if __name__ == "__main__":
    main()

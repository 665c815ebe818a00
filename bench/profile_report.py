#!/usr/bin/env python3
"""Summarise py-spy collapsed stacks (`--format raw`) of the gateway by hot-path step.

    profile_report.py results/profile-<ts>/gw-cookie-redis.txt.gz [...]

Each sample is charged to the innermost frame that names a step of the request path
(session load, JWT check, header shaping, upstream call...); samples with no such frame
are charged by the package of their leaf (aiohttp's server, the event loop...). Also
lists the functions with the most self time. Idle samples are not recorded by py-spy.

py-spy over-samples a thread that sits in a socket write (on this 2-vCPU VM a write leaf
drew 46-67 % of the samples while perf, counting CPU time, put the whole kernel at 19-31 %):
samples whose leaf is a socket write are counted apart, and the step shares are of the
remaining (Python) samples. Where profile.sh left `<route>.dso.txt` (perf's CPU split
by binary) next to a profile, the kernel/interpreter split is shown from it.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import Counter
from pathlib import Path

# (label, function-name regex, file regex); the innermost matching frame wins
STEPS: list[tuple[str, str, str]] = [
    ("metrics (prometheus_client)", r".*", r"prometheus_client/"),
    ("session: Redis GET (redis-py + socket)", r".*", r"redis/"),
    ("session: open meta (HKDF + AES-GCM)", r"open_meta", r"sessions/codec"),
    ("session: open record (HKDF + AES-GCM)", r"open_record", r"sessions/codec"),
    ("session: JSON -> SessionRecord", r"record_from_json", r"sessions/codec"),
    ("session: ticket parse + sha256 handle", r"Ticket\.(parse|handle)|digest", r"sessions/codec"),
    ("session: cache lookup", r"SessionCache\.", r"sessions/cache"),
    ("session: touch (reseal + EVAL)", r"_touch", r"sessions/manager"),
    ("session: manager.load (rest)", r".*", r"sessions/manager"),
    ("session: principal + cookie parse", r"session_principal|principal_of", r"login_services"),
    ("bearer: unverified JWT decode", r"looks_like_jwt|unverified_parts", r"tokens/jwt_access"),
    ("bearer: JWT validate (cache, sha256)", r"validate|digest", r"tokens/jwt_access"),
    ("bearer: introspection cache", r".*", r"tokens/introspection"),
    ("bearer: authenticate (rest)", r".*", r"tokens/(authenticator|bearer)"),
    ("identity headers + policy", r".*", r"policy/|web/identity"),
    ("upstream request headers", r".*", r"proxy/headers"),
    (
        "proxy: aiohttp client request",
        r".*",
        r"aiohttp/(client|connector|client_reqrep|client_proto|helpers|streams)",
    ),
    ("proxy: upstream send() (request head)", r"UpstreamProtocol\.write", r"proxy/upstream_"),
    ("proxy: upstream pool + llhttp parse", r".*", r"proxy/upstream_|httptools/"),
    ("proxy: stream response back", r"_stream_back", r"proxy/forward"),
    ("proxy: small response, whole", r"_whole_response", r"proxy/forward"),
    ("proxy: forward (rest)", r".*", r"proxy/forward"),
    ("proxy handler: route match, checks", r".*", r"web/handlers/proxy|policy/routes"),
    ("middleware: request id, client view, errors", r".*", r"web/middlewares|trusted|web/view"),
]
FALLBACK: list[tuple[str, str]] = [
    ("aiohttp server: parse request, write response", r"aiohttp/(web_|http_|base_protocol)"),
    ("event loop (asyncio / uvloop)", r"asyncio/|uvloop"),
    ("yarl / multidict", r"yarl/|multidict/"),
]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")
# Leaves that are a send() on a socket: the response to the client, the request upstream.
SOCKET_WRITE = re.compile(r"^(StreamWriter\._writelines|UpstreamProtocol\.write) \(")


def parse(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    for line in raw.decode().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = tuple(f for f in stack.split(";") if not f.startswith("process "))
            stacks[frames] += int(count)
    return stacks


def split(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame)
    return (m["func"], m["file"]) if m else (frame, "")


def bucket(frames: tuple[str, ...]) -> str:
    for frame in reversed(frames):
        func, file = split(frame)
        for label, func_re, file_re in STEPS:
            if re.search(file_re, file) and re.fullmatch(func_re, func):
                return label
    leaf = split(frames[-1])[1] if frames else ""
    for label, file_re in FALLBACK:
        if re.search(file_re, leaf):
            return label
    return f"other: {leaf.split('/')[0] or '?'}"


def shares(path: Path) -> tuple[int, Counter[str], Counter[str], int]:
    """(Python samples, samples per step, self samples per frame, socket-write samples)."""
    stacks = parse(path)
    buckets: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    writes = 0
    for frames, n in stacks.items():
        if frames and SOCKET_WRITE.match(frames[-1]):
            writes += n
            continue
        buckets[bucket(frames)] += n
        if frames:
            selfs[frames[-1]] += n
    return sum(buckets.values()) or 1, buckets, selfs, writes


def cpu_by_binary(path: Path) -> dict[str, float] | None:
    """perf's split of the workers' CPU time: kernel, interpreter, C extensions, libc."""
    dso = path.parent / (path.name.split(".")[0] + ".dso.txt")
    if not dso.exists():
        return None
    split_: Counter[str] = Counter()
    for line in dso.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        share, name = float(parts[0].rstrip("%")), parts[1]
        if name.startswith("[kernel"):
            split_["kernel (system calls, TCP, scheduling)"] += share
        elif name.startswith("libpython"):
            split_["Python interpreter"] += share
        elif name.startswith("libc"):
            split_["libc"] += share
        else:
            split_["C extensions (uvloop, llhttp, multidict, ...)"] += share
    return dict(split_)


def _table(title: str, names: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    """A Markdown table: one column per profile, one row per label."""
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    return lines + [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]]
    data = {p.name.split(".")[0]: shares(p) for p in paths}
    binaries = {p.name.split(".")[0]: cpu_by_binary(p) for p in paths}
    order: Counter[str] = Counter()
    for total, buckets, _, _ in data.values():
        for label, n in buckets.items():
            order[label] += n / total
    names = list(data)
    lines: list[str] = []
    if any(binaries.values()):
        kinds: Counter[str] = Counter()
        for split_ in binaries.values():
            kinds.update(split_ or {})
        lines += _table(
            "where the workers' CPU time went (perf, cpu-clock)",
            names,
            [(kind, [f"{(binaries[n] or {}).get(kind, 0.0):.1f} %" for n in names])
             for kind, _ in kinds.most_common()],
        )  # fmt: skip
        lines.append("")
    rows = [
        (label, [f"{100 * data[n][1][label] / data[n][0]:.1f} %" for n in names])
        for label, _ in order.most_common()
    ]
    rows.append(("Python samples", [str(data[n][0]) for n in names]))
    rows.append(("socket-write samples, left out (over-sampled)", [str(data[n][3]) for n in names]))
    lines += _table("step (share of the Python samples, py-spy)", names, rows)
    for name in names:
        total, _, selfs, _ = data[name]
        lines += ["", f"Top self time, {name}:", ""]
        lines += [f"- {100 * n / total:.1f} % {frame}" for frame, n in selfs.most_common(8)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

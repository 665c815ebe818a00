"""Who listens on a loopback TCP port: free or busy, and which process holds the socket.

Reads Linux's /proc (the demo targets Debian); elsewhere the owner is unknown (None).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

PROC = Path("/proc")
LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on host:port now (nothing else listens there).

    SO_REUSEADDR, as servers set it, so a closed connection in TIME_WAIT does not count.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def proc_available() -> bool:
    """True where listening sockets can be traced to their processes (Linux /proc)."""
    return (PROC / "net" / "tcp").exists()


def listening_inodes(port: int) -> set[str]:
    """Inodes of the IPv4/IPv6 sockets in LISTEN state on `port`, any address."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN_STATE and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def socket_holders(inodes: set[str], pids: list[int] | None = None) -> set[int]:
    """The pids (among `pids`, or all readable ones) with an open fd on one of `inodes`."""
    if not inodes:
        return set()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    candidates = pids if pids is not None else [int(p.name) for p in PROC.glob("[0-9]*")]
    holders: set[int] = set()
    for pid in candidates:
        # other users' processes are unreadable, and processes come and go while we look
        with contextlib.suppress(OSError), os.scandir(PROC / str(pid) / "fd") as fds:
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in wanted:
                        holders.add(pid)
                        break
    return holders


def session_members(session_id: int) -> list[int]:
    """Pids of the processes in one session (a child started with start_new_session)."""
    members = []
    for stat in PROC.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # fields after the ")" that ends the command name: state ppid pgrp session ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session_id:
                members.append(int(stat.parent.name))
    return members


def listens_in_session(port: int, session_id: int) -> bool:
    """True if a process of this session holds a listening socket on `port`."""
    return bool(socket_holders(listening_inodes(port), session_members(session_id)))


def describe_holder(port: int) -> str:
    """`pid 123 (redis-server)` for the process listening on `port`, or '' if unknown."""
    if not proc_available():
        return ""
    for pid in sorted(socket_holders(listening_inodes(port))):
        with contextlib.suppress(OSError):
            argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
            command = " ".join(a.decode(errors="replace") for a in argv if a)
            return f"pid {pid} ({command[:80]})"
    return ""

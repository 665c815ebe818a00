"""A real nginx (Debian `nginx-light`) as a subprocess, with its files in a temp directory."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
FORWARD_AUTH_DOC = REPO_ROOT / "docs" / "forward-auth.md"

_MAIN = """{user}worker_processes 1;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{server}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise RuntimeError("nginx not found: install the Debian package nginx-light")
    return found


def documented_server_block(doc: Path = FORWARD_AUTH_DOC) -> str:
    """The first ```nginx block of docs/forward-auth.md: the snippet users copy."""
    match = re.search(r"```nginx\n(.*?)```", doc.read_text(), re.DOTALL)
    if match is None:
        raise AssertionError(f"no nginx block in {doc}")
    return match.group(1)


class Nginx:
    """nginx in the foreground on 127.0.0.1:`port`, serving `server_block`."""

    def __init__(self, workdir: Path, server_block: str, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.server_block = server_block
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # As root the workers would switch to `nobody`, which cannot use the 0700 temp dir.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        conf.write_text(_MAIN.format(user=user, dir=self.workdir, server=self.server_block))
        pid = self.workdir / "nginx.pid"
        self.process = ManagedProcess(
            f"nginx:{self.port}",
            [nginx_binary(), "-p", str(self.workdir), "-c", str(conf),
             "-g", f"daemon off; pid {pid};"],
            log_path=self.workdir / "nginx.log",
            ready_port=self.port,
            start_timeout=15,
        )  # fmt: skip
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""

"""Real upstream servers for tests/differential, each a subprocess on a free loopback port.

Every one serves the same probe (sources in tests/differential/): it answers JSON
{"server", "resource", "path", "method", "host", "read"}: the resource *its own* router
resolved ("admin", "admin-host" or "public"), the method it executed after its own
method-override rules, the Host it served, and the identity/forwarding values it read.
`site="admin"` starts an instance that is the admin site as a whole (every resource
"admin-host"), for proxies that pick the app by virtual host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from tests.support.nginx import Nginx
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PROBES = REPO_ROOT / "tests" / "differential"
APPS = PROBES / "apps"
READ_HEADERS: list[str] = json.loads((APPS / "read-headers.json").read_text())
SERVLET_API = Path("/usr/share/java/tomcat10-servlet-api.jar")
CATALINA_HOME = Path("/usr/share/tomcat10")


class Probe:
    """One probe server: `.name`, `.url`, `.start()`, `.stop()`."""

    name: str
    port: int
    processes: list[ManagedProcess]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _require(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise RuntimeError(f"{binary} not found: run scripts/setup.sh (Debian {package})")
    return found


class ExpressProbe(Probe):
    """tests/differential/express/app.js on node (express + method-override, npm ci'd)."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "express", free_port()
        if not (PROBES / "express" / "node_modules" / "express").is_dir():
            raise RuntimeError("run scripts/setup.sh: npm ci in tests/differential/express")
        self.processes = [
            ManagedProcess(
                f"express-{site}:{self.port}",
                [_require("node", "nodejs"), "app.js", str(self.port), site],
                log_path=workdir / f"express-{site}.log",
                cwd=PROBES / "express",
                ready_port=self.port,
            )
        ]


class WsgirefProbe(Probe):
    """tests/differential/apps/wsgi_probe.py on the stdlib's wsgiref server."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "wsgiref", free_port()
        self.processes = [
            ManagedProcess(
                f"wsgiref-{site}:{self.port}",
                [sys.executable, str(APPS / "wsgi_probe.py"), str(self.port)],
                log_path=workdir / f"wsgiref-{site}.log",
                env={**os.environ, "PROBE_SITE": site},
                ready_port=self.port,
            )
        ]


class GunicornProbe(Probe):
    """The same WSGI probe on gunicorn (Debian package, system python)."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "gunicorn", free_port()
        argv = [_require("gunicorn", "gunicorn"), "--chdir", str(APPS), "--workers", "1",
                "--bind", f"127.0.0.1:{self.port}", "wsgi_probe:app"]  # fmt: skip
        self.processes = [
            ManagedProcess(
                f"gunicorn-{site}:{self.port}",
                argv,
                log_path=workdir / f"gunicorn-{site}.log",
                env={**os.environ, "PROBE_SITE": site},
                ready_port=self.port,
            )
        ]


class TomcatProbe(Probe):
    """Tomcat 10 (Debian tomcat10-common) with tests/differential/tomcat/Probe.java, compiled
    here with javac, deployed as ROOT in a CATALINA_BASE of its own."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "tomcat", free_port()
        base = workdir / f"tomcat-{site}"
        classes = base / "webapps" / "ROOT" / "WEB-INF" / "classes"
        for sub in ("conf", "logs", "temp", "work"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        classes.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROBES / "tomcat" / "server.xml", base / "conf" / "server.xml")
        shutil.copy(PROBES / "tomcat" / "web.xml", classes.parent / "web.xml")
        if not SERVLET_API.exists():
            raise RuntimeError("run scripts/setup.sh: Debian libtomcat10-java, tomcat10-common")
        subprocess.run(
            [_require("javac", "default-jdk-headless"), "-cp", str(SERVLET_API), "-d",
             str(classes), str(PROBES / "tomcat" / "Probe.java")],
            check=True, capture_output=True,
        )  # fmt: skip
        java_opts = (
            f"-Dprobe.port={self.port} -Dprobe.site={site} -Dprobe.read={','.join(READ_HEADERS)}"
        )
        env = {**os.environ, "CATALINA_BASE": str(base), "CATALINA_HOME": str(CATALINA_HOME),
               "CATALINA_PID": str(base / "tomcat.pid"), "JAVA_OPTS": java_opts}  # fmt: skip
        self.processes = [
            ManagedProcess(
                f"tomcat-{site}:{self.port}",
                [str(CATALINA_HOME / "bin" / "catalina.sh"), "run"],
                log_path=workdir / f"tomcat-{site}.log",
                env=env,
                cwd=base,
                ready_url=f"{self.url}/ready",
                start_timeout=60,
            )
        ]


def _nginx_json(resource: str) -> str:
    """nginx answers the probe in response headers (X-Probe-*, X-Probe-Read-<header>):
    `return` cannot escape JSON, and add_header leaves out a header whose value is empty."""
    read = " ".join(
        f"add_header X-Probe-Read-{name} $http_{name.lower().replace('-', '_')} always;"
        for name in READ_HEADERS
    )
    return (
        f"add_header X-Probe-Resource {resource} always; add_header X-Probe-Path $uri always; "
        "add_header X-Probe-Method $request_method always; add_header X-Probe-Host $host always; "
        f"{read} default_type text/plain; return 200 'nginx probe';"
    )


class NginxProbe(Probe):
    """nginx itself as the app: `location = /admin` and `/admin/` are the admin resource
    (after nginx's decoding, dot-segment and merge_slashes normalisation); one server block
    per vhost, admin.example.test being the admin site."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "nginx", free_port()
        listen = f"listen 127.0.0.1:{self.port}"
        if site == "admin":
            block = f"server {{ {listen}; location / {{ {_nginx_json('admin-host')} }} }}"
        else:
            block = f"""
    server {{ {listen} default_server; server_name _; merge_slashes on;
        location = /admin {{ {_nginx_json("admin")} }}
        location /admin/ {{ {_nginx_json("admin")} }}
        location / {{ {_nginx_json("public")} }} }}
    server {{ {listen}; server_name admin.example.test;
        location / {{ {_nginx_json("admin-host")} }} }}"""
        self.nginx = Nginx(workdir / f"nginx-probe-{site}", block, port=self.port)

    def start(self) -> None:
        self.nginx.start()

    def stop(self) -> None:
        self.nginx.stop()


class PhpProbe(Probe):
    """tests/differential/apps/probe.php on php-cgi, behind nginx's FastCGI (the usual setup)."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "php", free_port()
        fcgi = free_port()
        env = {**os.environ, "PHP_FCGI_CHILDREN": "0", "PHP_FCGI_MAX_REQUESTS": "0",
               "PROBE_SITE": site}  # fmt: skip
        self.php = ManagedProcess(
            f"php-cgi:{fcgi}",
            [_require("php-cgi", "php-cgi"), "-b", f"127.0.0.1:{fcgi}"],
            log_path=workdir / "php-cgi.log",
            env=env,
            ready_port=fcgi,
        )
        block = f"""
    server {{ listen 127.0.0.1:{self.port} default_server; server_name _;
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {APPS / "probe.php"};
            fastcgi_pass 127.0.0.1:{fcgi};
        }} }}"""
        self.nginx = Nginx(workdir / "nginx-php", block, port=self.port)

    def start(self) -> None:
        self.php.start()
        try:
            self.nginx.start()
        except BaseException:
            self.php.stop()
            raise

    def stop(self) -> None:
        self.nginx.stop()
        self.php.stop()


class NginxUriTomcatProbe(Probe):
    """Tomcat behind an nginx that proxies `$uri` (decoded once): the path is decoded twice
    in all, and Tomcat drops `;` parameters and resolves dot segments after nginx decoded."""

    def __init__(self, workdir: Path, site: str = "main") -> None:
        self.name, self.port = "nginx-uri-tomcat", free_port()
        self.tomcat = TomcatProbe(workdir / "tomcat", site)
        block = f"""
    server {{ listen 127.0.0.1:{self.port} default_server; server_name _;
        location / {{ proxy_pass http://127.0.0.1:{self.tomcat.port}$uri$is_args$args;
                      proxy_set_header Host $host; }} }}"""
        self.nginx = Nginx(workdir / "nginx-uri", block, port=self.port)

    def start(self) -> None:
        self.tomcat.start()
        try:
            self.nginx.start()
        except BaseException:
            self.tomcat.stop()
            raise

    def stop(self) -> None:
        self.nginx.stop()
        self.tomcat.stop()


class ProbeKind(Protocol):
    """What every probe class is: built from its work dir and the site it serves."""

    def __call__(self, workdir: Path, site: str = "main") -> Probe: ...


PROBE_KINDS: dict[str, ProbeKind] = {
    "express": ExpressProbe,
    "tomcat": TomcatProbe,
    "wsgiref": WsgirefProbe,
    "gunicorn": GunicornProbe,
    "nginx": NginxProbe,
    "php": PhpProbe,
    "nginx-uri-tomcat": NginxUriTomcatProbe,
}


class Caddy:
    """Caddy (Debian `caddy`) in the foreground with a Caddyfile; no admin API, no HTTPS."""

    def __init__(self, workdir: Path, caddyfile: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "Caddyfile"
        config.write_text("{\n\tadmin off\n\tauto_https off\n}\n\n" + caddyfile)
        env = {**os.environ, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"),
               "XDG_CONFIG_HOME": str(workdir / "config")}  # fmt: skip
        self.process = ManagedProcess(
            f"caddy:{port}",
            [_require("caddy", "caddy"), "run", "--config", str(config), "--adapter", "caddyfile"],
            log_path=workdir / "caddy.log",
            env=env,
            cwd=workdir,
            ready_port=port,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

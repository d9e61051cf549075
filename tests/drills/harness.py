"""What the failure drills drive: a throwaway PostgreSQL, real app servers (gunicorn, production settings)
and a small HTTP client with a cookie jar.

The PostgreSQL server is made for the drill from the machine's own binaries (initdb, pg_ctl) in a temporary
directory, on a free loopback port; the drills stop, kill and freeze it at will and remove it afterwards.
The shared server on 5432 is never touched. As root (CI), the server runs as the ``postgres`` user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    """The directory of the machine's PostgreSQL server binaries (Debian's, newest version first), if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found and (Path(found).parent / "createdb").exists() else None


class ThrowawayPostgres:
    """A PostgreSQL server of the drill's own: `start`, `stop` (any mode), `pause`/`resume` (SIGSTOP)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lorasite-drill-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.paused: list[int] = []
        self.as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> str:
        command = [str(self.bindir / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        return done.stdout

    def url(self, database: str = "lorasite") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"  # synchronous commits: they survive a kill
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def create_database(self, name: str = "lorasite") -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _server_pids(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:  # fields[1] is the parent pid
                children.append(int(stat.split("/")[2]))
        return [postmaster, *children]

    def pause(self) -> None:
        """Freeze every process of the server: it accepts TCP connections (the kernel does) but never answers."""
        self.paused = self._server_pids()
        for pid in self.paused:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.paused = []

    def destroy(self) -> None:
        self.resume()
        if self.running():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def app_environment(**overrides: str) -> dict[str, str]:
    """The production settings, as a deployment sets them (values the drills need in ``overrides``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CACHE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="lorasite.settings",
        SECRET_KEY="drill-secret-key-" + "x" * 40,
        DEBUG="0",
        SECURE_SSL="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        ACCESS_LOG="0",
        LOG_LEVEL="CRITICAL",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",  # no collectstatic here
        WEB_CONCURRENCY="2",
        DATABASE_TIMEOUT="2",
        DATABASE_CONNECT_TIMEOUT="2",
        DATABASE_STATEMENT_TIMEOUT="2",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
    return done.stdout


class AppServer:
    """gunicorn with the project's own configuration (lorasite/gunicorn.conf.py) on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="lorasite-drill-app-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> AppServer:
        command = [sys.executable, "-m", "gunicorn", "lorasite.wsgi", "--config", "lorasite/gunicorn.conf.py"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer: {Path(self.log.name).read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()
        os.unlink(self.log.name)

    def output(self) -> str:
        return Path(self.log.name).read_text()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Visitor:
    """One browser's worth of state against one server: cookies, and the CSRF token they carry."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects)

    def at(self, base: str) -> Visitor:
        """The same visitor (same cookies) talking to another server."""
        other = Visitor(base, self.jar)
        return other

    def request(
        self, method: str, path: str, *, data: Any = None, form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30,
    ) -> Answer:  # fmt: skip
        body, sent = None, dict(headers or {})
        if data is not None:
            body, sent["Content-Type"] = json.dumps(data).encode(), "application/json"
        elif form is not None:
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.csrf(), **form}).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if method not in ("GET", "HEAD") and self.csrf():
            sent.setdefault("X-CSRFToken", self.csrf())
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=sent)
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=timeout) as response:
                status, got, text = response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            status, got, text = error.code, dict(error.headers), error.read().decode()
        return Answer(status, got, text, time.monotonic() - started)

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Answer:
        return self.request("POST", path, **kwargs)

    def csrf(self) -> str:
        return next((c.value or "" for c in self.jar if c.name == "csrftoken"), "")

    def login(self, username: str, password: str) -> Answer:
        self.get("/accounts/login/")  # sets the CSRF cookie
        return self.post("/accounts/login/", form={"username": username, "password": password})

    def create_token(self, name: str = "drill") -> str:
        page = self.post("/accounts/tokens/", form={"name": name, "expires": "30"}).text
        match = re.search(r'id="new-token">([^<]+)<', page)
        assert match, page[:2000]
        return match.group(1)


def eventually(check: Any, timeout: float = 20, interval: float = 0.25) -> Any:
    """Retry ``check`` until it returns a true value (the recovery drills: no restart, just time)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)

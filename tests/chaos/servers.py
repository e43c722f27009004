"""Throwaway PostgreSQL and Redis servers the chaos run owns, so it may kill and restart them.

The machine's shared servers serve other tests at the same time; these listen on free ports
of 127.0.0.1 only, keep their files in one temporary directory, and go away with the test.
Each server process runs in the foreground under a small launcher that asks Linux to SIGKILL
it when the test process dies (PR_SET_PDEATHSIG), so a run killed without cleanup leaves no
server behind; ``pg_ctl`` still does the fast shutdown, which it does through the pid file.

PostgreSQL refuses to run as root: as root, its binaries run as an unprivileged account
(``postgres`` when it exists, else ``nobody``) that owns the temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from tests.e2e.fleet import LOCALHOST, free_port, wait_for

#: Runs as ``LAUNCHER PARENT UID GID ARGV...``: takes the account UID:GID when not -1 (as root:
#: the account may not be able to run this Python), then asks Linux to SIGKILL it when the
#: process PARENT (the test) dies, after the account change, which would clear that request.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "parent, uid, gid = (int(a) for a in sys.argv[1:4])\n"
    "if uid >= 0:\n"
    "    os.setgroups([]); os.setgid(gid); os.setuid(uid)\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[4], sys.argv[4:])\n"
)
_PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")


@dataclass(frozen=True, slots=True)
class Binaries:
    """Where the servers' programs are; None when one is missing (see :func:`find_binaries`)."""

    pg_bin: Path | None
    redis_server: Path | None

    def missing(self) -> list[str]:
        found = {"initdb, pg_ctl and postgres": self.pg_bin, "redis-server": self.redis_server}
        return [name for name, path in found.items() if path is None]


def find_binaries() -> Binaries:
    """PostgreSQL's server programs (the newest install first, then the PATH) and Redis'."""

    def has_all(folder: Path) -> bool:
        return all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres"))

    candidates = sorted(
        (Path(p) for pattern in _PG_BIN_GLOBS for p in glob.glob(pattern)),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_bin = next((folder for folder in candidates if has_all(folder)), None)
    redis_server = shutil.which("redis-server")
    return Binaries(pg_bin, Path(redis_server) if redis_server else None)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class ServerDir:
    """A temporary directory for the servers' files, owned by the account that runs them."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="dialer-chaos-"))
        self.user = _unprivileged_user() if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.path, self.user.pw_uid, self.user.pw_gid)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise AssertionError("running as root, and no postgres or nobody account to run PostgreSQL")


def _spawn(
    argv: Sequence[str], log: Path, *, user: pwd.struct_passwd | None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, as ``user``, dying with the test, output to ``log``."""
    uid, gid = (-1, -1) if user is None else (user.pw_uid, user.pw_gid)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(os.getpid()), str(uid), str(gid), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _run(argv: Sequence[str], *, user: pwd.struct_passwd | None, timeout_s: float = 60) -> str:
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        user=None if user is None else user.pw_uid,
        group=None if user is None else user.pw_gid,
        extra_groups=None if user is None else [],
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _kill(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None and popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)


class PostgresServer:
    """A PostgreSQL cluster made by ``initdb`` (trust auth, no fsync: the data is throwaway)."""

    def __init__(self, pg_bin: Path, home: ServerDir) -> None:
        self.pg_bin = pg_bin
        self.home = home
        self.data = home.path / "pgdata"
        self.socket_dir = home.path / "pgsock"
        self.log = home.path / "postgres.log"
        self.port = free_port()
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``dialer`` database."""
        return f"postgresql+psycopg://postgres@{LOCALHOST}:{self.port}/dialer"

    def init(self) -> None:
        self.socket_dir.mkdir()
        if self.home.user is not None:
            os.chown(self.socket_dir, self.home.user.pw_uid, self.home.user.pw_gid)
        _run(
            [
                str(self.pg_bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            user=self.home.user,
        )
        self.start()
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dialer")

    def start(self) -> None:
        self._popen = _spawn(
            [
                str(self.pg_bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={LOCALHOST}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            self.log,
            user=self.home.user,
        )
        wait_for("PostgreSQL to accept connections", self._ready, timeout_s=60, interval_s=0.1)

    def fast_restart(self, down_s: float = 0.0) -> None:
        """``pg_ctl stop -m fast`` (every session is cut), wait ``down_s``, start again."""
        _run(
            [str(self.pg_bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"],
            user=self.home.user,
        )
        if self._popen is not None:
            self._popen.wait(timeout=30)
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        _kill(self._popen)

    def _dsn(self, database: str) -> str:
        return (
            f"host={LOCALHOST} port={self.port} user=postgres dbname={database} connect_timeout=2"
        )

    def _ready(self) -> bool:
        if self._popen is not None and self._popen.poll() is not None:
            raise AssertionError(f"postgres exited: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            with psycopg.connect(self._dsn("postgres")) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False


class RedisServer:
    """A Redis that keeps nothing on disk: a restart loses every key (Redis data loss)."""

    def __init__(self, redis_server: Path, home: ServerDir) -> None:
        self.redis_server = redis_server
        self.home = home
        self.log = home.path / "redis.log"
        self.port = free_port()
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}/0"

    def start(self) -> None:
        self._popen = _spawn(
            [
                str(self.redis_server),
                "--port",
                str(self.port),
                "--bind",
                LOCALHOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home.path),
            ],
            self.log,
            user=self.home.user,
        )
        wait_for("Redis to answer", self._ready, timeout_s=30, interval_s=0.05)

    def kill(self) -> None:
        """SIGKILL: the data set is gone, as after a crash without persistence."""
        _kill(self._popen)

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()

    def _ready(self) -> bool:
        if self._popen is not None and self._popen.poll() is not None:
            raise AssertionError(f"redis exited: {self.log.read_text(errors='replace')[-2000:]}")
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@dataclass(frozen=True, slots=True)
class Servers:
    """The run's own PostgreSQL and Redis."""

    postgres: PostgresServer
    redis: RedisServer

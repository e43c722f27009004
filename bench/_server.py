"""Server processes the benchmarks start on 127.0.0.1 and measure (not a benchmark itself)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

#: Longest a server may take to answer ``/healthz``, in seconds.
START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Server:
    port: int
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user and system) the process has used so far (Linux's /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, key: str) -> float:
        """A memory figure from Linux's /proc: ``VmRSS`` now, or ``VmHWM``, its peak."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError(f"no {key} in /proc/{self.pid}/status")


@contextlib.contextmanager
def server(
    command: list[str], env: dict[str, str], port: int, *, stop_timeout_s: float = 30.0
) -> Iterator[Server]:
    """A server process, up (``/healthz`` answers) for the block, stopped after it (its whole
    process group); its output is printed when the block fails or the server dies."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_up(proc, port, log)
            try:
                yield Server(port, proc.pid)
            except Exception:
                print(f"the server's output:\n{_tail(log)}", file=sys.stderr)
                raise
            if proc.poll() is not None:
                raise RuntimeError(f"the server died during the run:\n{_tail(log)}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_up(proc: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not come up in {START_TIMEOUT_S} s:\n{_tail(log)}")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]

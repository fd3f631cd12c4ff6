"""Load on a running service: concurrent clients for a bounded time, bad requests mixed in, health probed.

What an operator runs to size a deployment, and what ``benchmarks/service.py`` and the tests run: each client
sends the good requests in turn, every ``bad_every``-th one a bad request instead; a probe asks ``/healthz``
meanwhile (the event loop must keep answering), and the server's memory is sampled from ``/proc``.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

__all__ = ["LoadReport", "Request", "bad_requests", "decompression_bomb", "json_request", "multipart_request",
           "run_load",
           "serving"]


@dataclass(frozen=True)
class Request:
    """One HTTP request, ready to send again and again, and the status it must get."""

    name: str
    body: bytes
    content_type: str
    expect: int = 200
    path: str = "/v1/predict"
    declared_length: int | None = None  # a Content-Length other than len(body): the body is never sent


def json_request(name: str, payload: Any, expect: int = 200, path: str = "/v1/predict") -> Request:
    """A JSON request."""
    return Request(name, json.dumps(payload).encode(), "application/json", expect, path)


def multipart_request(name: str, files: list[tuple[str, bytes]], fields: dict[str, list[str]] | None = None,
                      expect: int = 200, path: str = "/v1/predict") -> Request:
    """A multipart/form-data request: ``files`` as (filename, bytes) under ``image``, then ``fields``."""
    boundary = uuid.uuid4().hex
    parts = []
    for filename, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    for name_, values in (fields or {}).items():
        for value in values:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name_}"\r\n\r\n{value}\r\n'.encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return Request(name, body, f"multipart/form-data; boundary={boundary}", expect, path)


def decompression_bomb(side: int = 30_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels, all black: about 110 kB that would decode to
    ``side**2`` pixels (900 million by default)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the row's bits
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def bad_requests(jpeg: bytes, max_request_bytes: int) -> list[Request]:
    """The bad requests every service must refuse with a 4xx naming what is wrong, built around one real
    ``jpeg``: not an image, a decompression bomb, a truncated JPEG, a body over ``max_request_bytes`` (declared
    by its Content-Length: the body is not sent once refused), wrong types, missing fields, not base64, an
    unknown field, a wrong content type."""
    import base64

    encoded = base64.b64encode(jpeg).decode()
    over = max_request_bytes + (18 << 20)
    return [
        multipart_request("not an image", [("notes.txt", b"age 54, changed colour last month\n")], expect=422),
        multipart_request("decompression bomb", [("bomb.png", decompression_bomb())], expect=422),
        multipart_request("truncated JPEG", [("cut.jpg", jpeg[: len(jpeg) // 2])], expect=422),
        Request(f"{over >> 20} MB body", b"", "application/json", 413, declared_length=over),
        json_request("wrong types", {"lesions": [{"image": encoded, "age": "fifty", "sex": 1}]}, expect=422),
        json_request("missing image", {"lesions": [{"age": 50, "sex": "male"}]}, expect=422),
        json_request("not base64", {"lesions": [{"image": "%%%not base64%%%"}]}, expect=422),
        json_request("a path instead of an image", {"lesions": [{"image": encoded, "path": "/etc/passwd"}]},
                     expect=422),
        Request("wrong content type", b"image=lesion.jpg", "text/plain", 415),
    ]


@dataclass
class LoadReport:
    """What a run of :func:`run_load` measured."""

    clients: int
    seconds: float
    good: int = 0
    good_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bad: dict[str, dict[str, Any]] = field(default_factory=dict)
    health_latencies: list[float] = field(default_factory=list)
    memory_mb: list[float] = field(default_factory=list)
    served: dict[str, Any] = field(default_factory=dict)

    def percentile(self, values: list[float], q: float) -> float:
        """The ``q``-th percentile of ``values`` in milliseconds (NaN without values)."""
        return float(np.percentile(values, q) * 1000) if values else float("nan")

    def summary(self) -> dict[str, Any]:
        """The headline figures: throughput, latency percentiles, errors, health latency, and memory (at the start,
        a quarter into the run once the batches reached their size, at the end, and its peak)."""
        return {
            "clients": self.clients, "seconds": round(self.seconds, 1), "good_requests": self.good,
            "requests_per_s": round(self.good / self.seconds, 2) if self.seconds else float("nan"),
            "p50_ms": round(self.percentile(self.good_latencies, 50), 1),
            "p95_ms": round(self.percentile(self.good_latencies, 95), 1),
            "p99_ms": round(self.percentile(self.good_latencies, 99), 1),
            "errors": len(self.errors),
            "bad_requests": sum(entry["count"] for entry in self.bad.values()),
            "healthz_p95_ms": round(self.percentile(self.health_latencies, 95), 1),
            "healthz_max_ms": round(max(self.health_latencies, default=float("nan")) * 1000, 1),
            "memory_start_mb": self.memory_mb[0] if self.memory_mb else None,
            "memory_settled_mb": self.memory_mb[len(self.memory_mb) // 4] if self.memory_mb else None,
            "memory_end_mb": self.memory_mb[-1] if self.memory_mb else None,
            "memory_peak_mb": max(self.memory_mb) if self.memory_mb else None,
        }


def _rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` and its children (uvicorn's workers), in MiB, from ``/proc``."""
    total, found = 0, False
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    found = True
        except OSError:
            continue
    return round(total / 1024, 1) if found else None


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _send(host: str, port: int, request: Request, token: str | None, timeout: float,
          connection: http.client.HTTPConnection | None) -> tuple[int, bytes, http.client.HTTPConnection | None]:
    """(status, body, the connection to reuse) for one request; a declared over-long body goes on a raw socket."""
    headers = {"Content-Type": request.content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if request.declared_length is not None:
        return (*_send_declared(host, port, request, headers, timeout), connection)
    if connection is None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", request.path, body=request.body, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        raise
    if answer.getheader("connection", "").lower() == "close":
        connection.close()
        connection = None
    return answer.status, body, connection


def _send_declared(host: str, port: int, request: Request, headers: dict[str, str],
                   timeout: float) -> tuple[int, bytes]:
    """Send the headers with ``declared_length`` and stream the body only while the server has not answered
    (a service refusing it by its Content-Length answers before reading it)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        lines = [f"POST {request.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                 f"Content-Length: {request.declared_length}", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunk, sent = bytes(1 << 16), 0
        while sent < request.declared_length:
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable or not writable:  # answered (or stuck): stop sending
                break
            try:
                sent += sock.send(chunk[: request.declared_length - sent])  # never blocks on a full buffer
            except OSError:
                break
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read()


def run_load(url: str, good: list[Request], bad: list[Request] = (), *, clients: int = 32, seconds: float = 60.0,
             bad_every: int = 10, pid: int | None = None, token: str | None = None,
             timeout: float = 120.0) -> LoadReport:
    """Load the service at ``url`` for ``seconds`` with ``clients`` concurrent clients.

    Parameters
    ----------
    url : str
        The service's base address (``http://127.0.0.1:8000``).
    good : list of Request
        Requests that must get 200; each client sends them in turn (starting at its own offset).
    bad : list of Request, default=()
        Requests that must get their ``expect`` status; every ``bad_every``-th request of a client is one.
    clients : int, default=32
    seconds : float, default=60
    bad_every : int, default=10
    pid : int, default=None
        The server's process id, for its memory (and its children's) every half second.
    token : str, default=None
        A bearer token for every request.
    timeout : float, default=120
        Seconds one request may take before it counts as an error.

    Returns
    -------
    report : LoadReport
        Each bad request's statuses and first message are in ``report.bad``; anything that went other than
        expected is in ``report.errors``.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    report = LoadReport(clients=clients, seconds=seconds)
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + seconds

    def client(number: int) -> None:
        connection, sent = None, 0
        while time.monotonic() < stop_at:
            sent += 1
            is_bad = bool(bad) and sent % bad_every == 0
            request = (bad[(sent // bad_every + number) % len(bad)] if is_bad
                       else good[(sent + number) % len(good)])
            began = time.monotonic()
            try:
                status, body, connection = _send(host, port, request, token, timeout, connection)
            except (OSError, http.client.HTTPException) as exc:
                connection = None
                with lock:
                    report.errors.append(f"{request.name}: {type(exc).__name__}: {exc}")
                continue
            took = time.monotonic() - began
            with lock:
                if status != request.expect:
                    report.errors.append(f"{request.name}: HTTP {status} (expected {request.expect}): "
                                         f"{body[:300].decode(errors='replace')}")
                elif is_bad:
                    entry = report.bad.setdefault(request.name, {"status": status, "count": 0,
                                                                 "message": _message(body)})
                    entry["count"] += 1
                else:
                    report.good += 1
                    report.good_latencies.append(took)
        if connection is not None:
            connection.close()

    def probe() -> None:
        while time.monotonic() < stop_at:
            began = time.monotonic()
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                connection.request("GET", "/healthz")
                ok = connection.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                connection.close()
            with lock:
                if ok:
                    report.health_latencies.append(time.monotonic() - began)
                else:
                    report.errors.append("/healthz did not answer 200")
            if pid is not None:
                memory = _rss_mb(pid)
                if memory is not None:
                    report.memory_mb.append(memory)
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(clients)]
    threads.append(threading.Thread(target=probe, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - start
    if pid is not None and (memory := _rss_mb(pid)) is not None:
        report.memory_mb.append(memory)
    try:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.request("GET", "/readyz", headers={"Authorization": f"Bearer {token}"} if token else {})
        report.served = json.loads(connection.getresponse().read()).get("served", {})
        connection.close()
    except (OSError, http.client.HTTPException, ValueError):
        pass
    return report


def _message(body: bytes) -> str:
    """The first message of an error answer (FastAPI's ``detail``), as the client would show it."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")
    if isinstance(detail, list) and detail:
        first = detail[0]
        where = ".".join(str(part) for part in first.get("loc", [])[1:])
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(detail)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def serving(model_file: str | Path, *options: str, startup_timeout: float = 180.0) -> Iterator[tuple[str, Any]]:
    """``melagbm serve MODEL OPTIONS`` on 127.0.0.1 in a child process, until the block ends.

    Parameters
    ----------
    model_file : path
    *options : str
        More ``melagbm serve`` options (``--max-batch``, ``--token-file``, ...).
    startup_timeout : float, default=180
        Seconds to wait for ``/readyz``.

    Yields
    ------
    url, process : str, subprocess.Popen
        The service's base address and its process (its output goes to a temporary file, shown if it fails
        to start).
    """
    import tempfile

    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe nobody reads would stop the server's event loop
    process = subprocess.Popen([sys.executable, "-m", "melagbm.cli", "serve", str(model_file), "--port", str(port),
                                *options], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log.seek(0)
                output = log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"the service did not start within {startup_timeout:.0f} s: {output}")
            time.sleep(0.3)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

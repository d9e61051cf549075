"""Drill: five clients send their requests a byte at a time; everyone else is still served at once.

The supported deployment runs gunicorn's threaded workers (lorasite/gunicorn.conf.py): a slow connection
holds one thread, not a whole worker process, while idle and silent connections wait in the worker's
poller; each worker has more threads than five slow clients (gthread accepts connections whether or not a
thread is free, so one worker may be handed all five). Measured with this drill's clients: five sync
workers (``WEB_WORKER_CLASS=sync WEB_THREADS=1``) kept the next request waiting 29.5 s; the threaded
workers answer in milliseconds. In production a buffering proxy in front removes slow clients altogether
(README, "Deployment").
"""

from __future__ import annotations

import json
import socket
import threading
import time

FAST_SECONDS = 1.0
SLOW_CLIENTS = 5


def trickle(port: int, payload: bytes, stop: threading.Event, every: float = 0.2) -> None:
    """Send ``payload`` one byte every ``every`` seconds until it is sent or ``stop`` is set."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        for i in range(len(payload)):
            if stop.is_set():
                return
            connection.sendall(payload[i : i + 1])
            time.sleep(every)


def slow_requests(port: int) -> list[bytes]:
    """Slow headers (a long header line) and slow bodies (headers at once, then the body a byte at a time)."""
    body = json.dumps({"model": {"preset": "gpt2"}, "lora": {"r": 8}}).encode()
    headers = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 400 + b"\r\n\r\n"
    post = (
        b"POST /api/v1/estimate/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return [headers, headers, headers, post, post][:SLOW_CLIENTS]


def test_five_slowly_sent_requests_do_not_stall_anyone_else(server):
    from tests.drills.harness import Visitor

    stop = threading.Event()
    payloads = slow_requests(server.port)
    senders = [threading.Thread(target=trickle, args=(server.port, p, stop), daemon=True) for p in payloads]
    for sender in senders:
        sender.start()
    time.sleep(1.0)  # every slow client is connected and half-way through its first line
    visitor, timings = Visitor(server.base), []
    try:
        for r in range(1, 21):
            for answer in (
                visitor.post("/api/v1/estimate/", data={"model": {"preset": "llama-3.1-8b"}, "lora": {"r": r}}),
                visitor.get(f"/?preset=gpt2&r={r}", headers={"HX-Request": "true"}),
                visitor.get("/healthz"),
            ):
                assert answer.status == 200
                timings.append(answer.seconds)
        assert all(sender.is_alive() for sender in senders), "the slow clients finished too early to prove anything"
    finally:
        stop.set()
        for sender in senders:
            sender.join(10)
    assert max(timings) < FAST_SECONDS, f"slowest {max(timings):.2f} s with {SLOW_CLIENTS} slow clients connected"

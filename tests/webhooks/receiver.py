"""A webhook receiver, run as its own process:
`python -m tests.webhooks.receiver <port> [secret ...]`.

It verifies every delivery with the `standardwebhooks` package (a verifier we did not write),
against each secret it was given, and records what it got. A test steers it over HTTP:

    POST /control   {"secrets": [...], "fail": n, "pass": m, "redirect": url, "delay": s,
                    "huge": bool}
                    secrets to verify with; answer the next n deliveries with 500 (after
                    letting m through, if `pass` is given: a failure in mid-stream); answer
                    every delivery with a 302 to `redirect`; sleep `delay` seconds before
                    answering; answer 200 with a body of 64 MiB, slowly
    GET  /received  every delivery so far: webhook-id, the indexes of the secrets that verify
                    it, the body (parsed) and the status answered
    GET  /state     the controls, and `inflight`: deliveries received and not yet answered
    anything else   a delivery: recorded, and answered as the controls say (204 by default)

With RECEIVER_LOG=<file> in its environment it also appends each delivery to that file, one JSON
line each, written before it answers: the fault run kills receivers with SIGKILL and starts them
again, and what they received must outlive them.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

STATE: dict[str, Any] = {
    "secrets": [],
    "fail": 0,
    "pass": 0,
    "redirect": None,
    "delay": 0.0,
    "huge": False,
}
RECEIVED: list[dict[str, Any]] = []
LOCK = threading.Lock()
INFLIGHT = [0]
# The durable log's file descriptor (O_APPEND: one write(2) per record, so a kill cannot leave
# half a line), or None.
LOG: list[int | None] = [None]


def verified_by(body: bytes, headers: dict[str, str], secrets: list[str]) -> list[int]:
    found = []
    for index, secret in enumerate(secrets):
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            continue
        found.append(index)
    return found


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with LOCK:
            if self.path == "/state":
                self._json(200, {**STATE, "inflight": INFLIGHT[0]})
            else:
                self._json(200, RECEIVED)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/control":
            with LOCK:
                STATE.update(json.loads(body))
            self._json(200, STATE)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            secrets = list(STATE["secrets"])
            if STATE["redirect"]:
                status = 302
            elif STATE["pass"] > 0:
                STATE["pass"] -= 1
                status = 204
            elif STATE["fail"] > 0:
                STATE["fail"] -= 1
                status = 500
            else:
                status = 204
            delay, huge, redirect = STATE["delay"], STATE["huge"], STATE["redirect"]
            record = {
                "id": headers.get("webhook-id"),
                "verified_by": verified_by(body, headers, secrets),
                "signatures": len(headers.get("webhook-signature", "").split()),
                "body": json.loads(body),
                "status": status,
                "at": time.time(),
            }
            RECEIVED.append(record)
            fd = LOG[0]
            if fd is not None:
                os.write(fd, json.dumps(record).encode() + b"\n")
            INFLIGHT[0] += 1
        try:
            self._answer(status, delay, huge, redirect)
        finally:
            with LOCK:
                INFLIGHT[0] -= 1

    def _answer(self, status: int, delay: float, huge: bool, redirect: str | None) -> None:
        time.sleep(delay)
        if huge:
            self.send_response(200)
            self.send_header("content-length", str(64 << 20))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            try:
                for _ in range(64):
                    self.wfile.write(chunk)
                    time.sleep(0.05)  # 3 s for the whole: longer than the service waits
            except OSError:
                pass  # the service stopped reading, as it should
            return
        self.send_response(status)
        if redirect:
            self.send_header("location", redirect)
        self.send_header("content-length", "0")
        self.end_headers()


def main() -> None:
    STATE["secrets"] = sys.argv[2:]
    if path := os.environ.get("RECEIVER_LOG"):
        LOG[0] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()

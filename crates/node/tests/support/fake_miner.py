"""A misbehaving miner for the model-network end-to-end test.

usage: fake_miner.py MODE UPSTREAM
  garbage: reports the upstream provider's health but answers every request with random words
           and no receipt;
  slow:    forwards everything to the upstream provider, after a delay on each POST.
  noisy-auditor:  answers /v1/audit with a finding of two categories on every fourth line;
  silent-auditor: answers /v1/audit with no findings.
Prints {"url": ...} on its first line once it listens on a free port.
"""
import json
import random
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE, UPSTREAM = sys.argv[1], sys.argv[2].rstrip("/")
DELAY = 4.0
WORDS = ["banana", "quartz", "violet", "seven", "marble", "orbit", "copper", "lantern"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up waiting, as callers of a slow miner do

    def forward(self, method, body=None):
        # The gateway names the model to serve in an x-hibana header: pass those on.
        headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-hibana")}
        headers["Content-Type"] = "application/json"
        req = urllib.request.Request(UPSTREAM + self.path, data=body, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                keep = [(k, v) for k, v in r.headers.items() if k.lower().startswith("x-hibana")]
                self.reply(r.status, r.read(), keep)
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read())

    def do_GET(self):
        self.forward("GET")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if MODE == "slow":
            time.sleep(DELAY)
            return self.forward("POST", body)
        if self.path == "/v1/audit" and MODE.endswith("-auditor"):
            lines = json.loads(body).get("source", "").count("\n") + 1
            findings = []
            if MODE == "noisy-auditor":
                for line in range(1, lines + 1, 4):
                    for category in ("reentrancy", "access-control"):
                        findings.append({"rule": "x", "category": category, "line": line})
            answer = {"object": "audit", "model": "hibana-audit", "findings": findings, "errors": []}
            return self.reply(200, json.dumps(answer).encode())
        text = " ".join(random.choice(WORDS) for _ in range(6))
        answer = {"id": "x", "object": "chat.completion", "created": 0, "model": "garbage",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                               "text": text, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 6, "total_tokens": 7}}
        self.reply(200, json.dumps(answer).encode())


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"url": "http://127.0.0.1:%d" % server.server_port}), flush=True)
server.serve_forever()

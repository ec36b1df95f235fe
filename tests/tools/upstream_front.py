#!/usr/bin/env python3
"""A fault-injecting HTTP front for a real registry, for integration tests of the agent's
upstream client. It forwards every request to --registry and can, first:
  --fail-first N        answer the first N requests 503
  --throttle-first N    answer the first N requests 429 with Retry-After: 1
  --fail-after N        answer every request after the first N with 503
  --basic USER:PASS     require Basic credentials (401 with a Basic challenge otherwise)
  --redirect-blobs      answer blob GETs with a 307 to a second listener (a "CDN" on another
                        port, so another origin) that forwards to the registry
  --ratelimit R/L       add Docker Hub's ratelimit-remaining / ratelimit-limit headers
Prints "listening on 127.0.0.1:PORT cdn 127.0.0.1:PORT2", then one line per request:
"front|cdn METHOD PATH status=S auth=yes|no". Standard library only.
"""
import argparse
import base64
import http.client
import http.server
import sys
import threading

COUNT = 0
LOCK = threading.Lock()


def log(line):
    with LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def make_handler(args, role, cdn_port):
    host, port = args.registry.rsplit(":", 1)
    expected = None
    if args.basic:
        expected = "Basic " + base64.b64encode(args.basic.encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, status, headers=(), body=b""):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            log("%s %s %s status=%d auth=%s" % (role, self.command, self.path, status,
                                               "yes" if self.headers.get("Authorization") else "no"))

        def handle_any(self):
            global COUNT
            with LOCK:
                COUNT += 1
                n = COUNT
            if role == "front":
                if n <= args.fail_first or (args.fail_after and n > args.fail_after):
                    return self.reply(503, [("Content-Type", "application/json")], b'{"errors":[]}')
                if n <= args.throttle_first:
                    return self.reply(429, [("Retry-After", "1")], b'{"errors":[]}')
                if expected and self.headers.get("Authorization") != expected:
                    return self.reply(401, [("WWW-Authenticate", 'Basic realm="front"')], b"")
                if args.redirect_blobs and self.command == "GET" and "/blobs/" in self.path:
                    return self.reply(307, [("Location", "http://127.0.0.1:%d%s" % (cdn_port, self.path))])
            self.forward(host, int(port))

        def forward(self, host, port):
            conn = http.client.HTTPConnection(host, port, timeout=30)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "authorization", "connection")}
            conn.request(self.command, self.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in ("content-length", "connection", "transfer-encoding")]
            if args.ratelimit and role == "front":
                remaining, limit = args.ratelimit.split("/")
                out += [("ratelimit-remaining", remaining + ";w=21600"),
                        ("ratelimit-limit", limit + ";w=21600")]
            self.reply(resp.status, out, body)
            conn.close()

        do_GET = do_HEAD = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--registry", required=True, help="host:port of the real registry")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--throttle-first", type=int, default=0)
    p.add_argument("--fail-after", type=int, default=0)
    p.add_argument("--basic", default="")
    p.add_argument("--redirect-blobs", action="store_true")
    p.add_argument("--ratelimit", default="")
    args = p.parse_args()
    cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    cdn.RequestHandlerClass = make_handler(args, "cdn", 0)
    front = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            make_handler(args, "front", cdn.server_address[1]))
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    log("listening on 127.0.0.1:%d cdn 127.0.0.1:%d" % (front.server_address[1], cdn.server_address[1]))
    front.serve_forever()


if __name__ == "__main__":
    main()

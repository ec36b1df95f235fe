#!/usr/bin/env python3
"""A Docker-style token server for integration tests (distribution's `auth: token`).

GET /token?service=S&scope=repository:NAME:ACTIONS issues an RS256 JWT whose x5c header
carries the certificate docker-registry trusts (its rootcertbundle). Requests must carry
Basic credentials matching --user/--password; anonymous and wrong ones get 401 (with
--anonymous, requests without credentials get pull access).
Prints "listening on HOST:PORT" once ready and "token issued ..." per token. Standard
library plus the openssl command line (for the RSA signature).
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, cert, key):
        self.key = key
        pem = open(cert).read()
        body = "".join(l for l in pem.splitlines() if "-----" not in l)
        self.x5c = [body]

    def sign(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input, capture_output=True, check=True).stdout
        return signing_input.decode() + "." + b64url(sig)


def make_handler(args, issuer):
    expected = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        issued = 0

        def log_message(self, fmt, *a):
            sys.stdout.write("request " + (fmt % a) + "\n")
            sys.stdout.flush()

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/token":
                self.send_error(404)
                return
            anonymous = "Authorization" not in self.headers and args.anonymous
            if not anonymous and self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                body = b'{"details":"invalid credentials"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            q = urllib.parse.parse_qs(url.query)
            service = q.get("service", [""])[0]
            access = []
            for scope in q.get("scope", []):
                for one in scope.split(" "):
                    parts = one.split(":")
                    if len(parts) >= 3:
                        actions = parts[-1].split(",")
                        if anonymous:
                            actions = [a for a in actions if a == "pull"]
                        access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                       "actions": actions})
            now = int(time.time())
            Handler.issued += 1
            # --expired-first N: the first N tokens are already expired (the registry answers
            # 401 invalid_token), while expires_in claims 300 s.
            start = now - 1800 if Handler.issued <= args.expired_first else now
            claims = {"iss": args.issuer, "sub": "" if anonymous else args.user, "aud": service,
                      "exp": start + 300, "nbf": start - 10, "iat": start,
                      "jti": b64url(os.urandom(12)), "access": access}
            token = issuer.sign(claims)
            issued = datetime.datetime.utcfromtimestamp(now).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                               "issued_at": issued}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            sys.stdout.write("token issued scope=%s\n" % q.get("scope", [""]))
            sys.stdout.flush()

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--issuer", default="layerswarm-test-issuer")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--anonymous", action="store_true", help="grant pull without credentials")
    p.add_argument("--expired-first", type=int, default=0)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), make_handler(args, Issuer(args.cert, args.key)))
    print("listening on %s:%d" % server.server_address, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

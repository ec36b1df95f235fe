#!/usr/bin/python3
"""An outsider on the site's network, as a plain BitTorrent client (Debian's python3-libtorrent).

It holds a chunk's metainfo (leaked, say) but no member certificate, connects straight to the
given peers' BitTorrent ports and tries for --seconds to download the chunk three ways:
  as is             (an SSL torrent needs a certificate: it gets a self-signed one, SAN "*")
  stripped          (the same pieces with the "ssl-cert" key removed: a plaintext torrent)
  plain             (the metainfo unchanged, when it is not an SSL torrent: the open-site case)
Prints one JSON line: payload bytes downloaded per attempt and in all, and whether any peer
connection was established. Used by tests/integration/security_test.cpp.

  outsider.py --metainfo FILE --peer IP:PORT [--peer ...] --seconds S --workdir DIR
"""
import argparse
import json
import os
import subprocess
import sys
import time

import libtorrent as lt


def self_signed(workdir):
    key = os.path.join(workdir, "outsider.key")
    cert = os.path.join(workdir, "outsider.pem")
    dh = os.path.join(workdir, "outsider-dh.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=*", "-addext", "subjectAltName=DNS:*"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                    "group:ffdhe2048", "-out", dh], check=True, capture_output=True)
    return cert, key, dh


def attempt(name, info, peers, seconds, workdir, cert):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0,127.0.0.1:0s",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.all_categories,
    })
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = os.path.join(workdir, name)
    os.makedirs(params.save_path, exist_ok=True)
    handle = ses.add_torrent(params)
    if cert:
        handle.set_ssl_certificate(*cert)
        handle.resume()
    connected = False
    downloaded = 0
    deadline = time.monotonic() + seconds
    next_connect = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_connect:  # keep knocking: a refused connection is retried
            for host, port in peers:
                handle.connect_peer((host, port))
            next_connect = now + 1.0
        for a in ses.pop_alerts():
            if isinstance(a, lt.peer_connect_alert):
                connected = True
        status = handle.status()
        downloaded = max(downloaded, status.total_payload_download)
        if status.num_peers > 0:
            connected = True
        time.sleep(0.1)
    del ses
    return downloaded, connected


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--metainfo", required=True)
    p.add_argument("--peer", action="append", required=True)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--workdir", required=True)
    args = p.parse_args()
    peers = []
    for text in args.peer:
        host, port = text.rsplit(":", 1)
        peers.append((host, int(port)))
    with open(args.metainfo, "rb") as f:
        raw = f.read()
    decoded = lt.bdecode(raw)
    result = {"attempts": {}}
    ssl = b"ssl-cert" in decoded[b"info"]
    if ssl:
        cert = self_signed(args.workdir)
        result["attempts"]["as_is"] = attempt("as-is", lt.torrent_info(raw), peers,
                                              args.seconds, args.workdir, cert)
        del decoded[b"info"][b"ssl-cert"]
        stripped = lt.torrent_info(lt.bencode(decoded))
        result["attempts"]["stripped"] = attempt("stripped", stripped, peers, args.seconds,
                                                 args.workdir, None)
    else:
        result["attempts"]["plain"] = attempt("plain", lt.torrent_info(raw), peers,
                                              args.seconds, args.workdir, None)
    result["ssl_torrent"] = ssl
    result["downloaded"] = sum(d for d, _ in result["attempts"].values())
    result["connected"] = any(c for _, c in result["attempts"].values())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes an OCI image layout with generated content, for tests, the demo and benchmarks.

Each layer is a gzip (level 1) tar holding one file of random, incompressible bytes of the
given size; --busybox adds a runnable layer with /bin/busybox and a shell. With several
--platform values an OCI index ties one image per platform together. Push the result with
  skopeo copy [--all] [--format v2s2] oci:DIR:TAG docker://HOST/REPO:TAG

Prints a JSON summary: the top digest, its media type, and every blob with its size.
Standard library only.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def parse_size(text):
    t = text.strip().upper()
    if t.endswith("B"):
        t = t[:-1]
    mult = 1
    if t and t[-1] in "KMG":
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[t[-1]]
        t = t[:-1]
    return int(float(t) * mult)


class Layout:
    def __init__(self, root):
        self.root = root
        self.blob_dir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blob_dir, exist_ok=True)
        self.blobs = []

    def put(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blob_dir, digest)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.blobs.append({"digest": "sha256:" + digest, "size": len(data),
                               "mediaType": media_type})
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def tar_bytes(members):
    """members: list of (name, bytes-or-None-for-dir, mode, symlink-target-or-None)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, link in members:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.mode = mode
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def add_layer(layout, tar, level):
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    compressed = gzip.compress(tar, compresslevel=level, mtime=0)
    return layout.put(compressed, OCI_LAYER_GZIP), diff_id


def busybox_tar(path):
    with open(path, "rb") as f:
        data = f.read()
    members = [("bin", None, 0o755, None), ("bin/busybox", data, 0o755, None)]
    for applet in ("sh", "ls", "cat", "echo", "uname", "true"):
        members.append(("bin/" + applet, None, 0o777, "busybox"))
    return tar_bytes(members)


def make_image(layout, args, rng, arch):
    layers, diff_ids = [], []
    if args.busybox:
        desc, diff = add_layer(layout, busybox_tar(args.busybox), args.gzip_level)
        layers.append(desc)
        diff_ids.append(diff)
    for i, size in enumerate(args.layer):
        payload = rng.randbytes(size)
        tar = tar_bytes([("data-%s-%d.bin" % (arch, i), payload, 0o644, None)])
        desc, diff = add_layer(layout, tar, args.gzip_level)
        layers.append(desc)
        diff_ids.append(diff)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "layerswarm mkimage.py", "comment": args.label}],
    }
    config_desc = layout.put(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                "layers": layers}
    return layout.put(json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="output OCI layout directory (created)")
    p.add_argument("--tag", default="latest")
    p.add_argument("--layer", action="append", type=parse_size, default=[],
                   help="a random layer of this size (1M, 300K, 2G); repeatable")
    p.add_argument("--platform", action="append", default=[],
                   help="linux/ARCH; two or more make an OCI index")
    p.add_argument("--busybox", help="path of a static busybox to add as a runnable layer")
    p.add_argument("--seed", type=int, default=None, help="for reproducible content")
    p.add_argument("--label", default="", help="recorded in the config, makes images distinct")
    p.add_argument("--gzip-level", type=int, default=1)
    args = p.parse_args()

    rng = random.Random(args.seed if args.seed is not None else os.urandom(16))
    layout = Layout(args.dir)
    platforms = args.platform or ["linux/amd64"]
    images = []
    for plat in platforms:
        arch = plat.split("/")[1]
        desc = make_image(layout, args, rng, arch)
        desc["platform"] = {"architecture": arch, "os": "linux"}
        images.append(desc)
    if len(images) == 1:
        top = {k: v for k, v in images[0].items() if k != "platform"}
    else:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images}
        top = layout.put(json.dumps(index, sort_keys=True).encode(), OCI_INDEX)
    ref = dict(top)
    ref["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(args.dir, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [ref]}, f)
    with open(os.path.join(args.dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    json.dump({"digest": top["digest"], "mediaType": top["mediaType"], "tag": args.tag,
               "blobs": layout.blobs}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

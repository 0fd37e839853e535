#!/usr/bin/python3
"""Writes a one-layer docker-archive tar (what `ctr images import` and
`podman load` read) from local files, so the lab needs no registry.

Usage: image-tar.py OUT.tar REFERENCE ENTRYPOINT_JSON SRC=DEST [SRC=DEST ...]
A DEST ending in "@" makes a symlink: busybox=/bin/sh@ links /bin/sh to
/bin/busybox (the SRC names the link target's base name in DEST's dir)."""

import hashlib
import io
import json
import sys
import tarfile


def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for src, dest in files:
            parts = dest.strip("/").rstrip("@").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                path = "/".join(parts[:i])
                if path not in dirs:
                    dirs.add(path)
                    info = tarfile.TarInfo(path)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            if dest.endswith("@"):
                info = tarfile.TarInfo(dest.strip("/")[:-1])
                info.type, info.linkname = tarfile.SYMTYPE, src
                tar.addfile(info)
            else:
                info = tar.gettarinfo(src, dest.strip("/"))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                with open(src, "rb") as handle:
                    tar.addfile(info, handle)
    return buf.getvalue()


def main(out, reference, entrypoint, *mappings):
    files = [tuple(m.split("=", 1)) for m in mappings]
    blob = layer(files)
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": json.loads(entrypoint),
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [reference], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in (("layer.tar", blob), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])

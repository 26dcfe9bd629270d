"""Build the krew plugin archive and keep plugins/aifactory.yaml's sha256 in step with it.

    python -m hack.krew [--out dist/] [--check]

The archive holds the launcher `plugins/kubectl-aifactory` and the licence notice, written
with fixed owners, modes and times, so the same files always give the same bytes (and the
manifest's sha256 can be checked by a test). Publishing it as a release asset at the
manifest's `uri` is the release's job.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "plugins" / "aifactory.yaml"
FILES = {
    "kubectl-aifactory": REPO / "plugins" / "kubectl-aifactory",
    "LICENSE": REPO / "plugins" / "LICENSE",
}
ARCHIVE = "kubectl-aifactory.tar.gz"


def archive() -> bytes:
    """The plugin archive, byte for byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path in sorted(FILES.items()):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name == "kubectl-aifactory" else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hack.krew", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="also write the archive into this directory")
    p.add_argument("--check", action="store_true", help="only check the manifest's sha256")
    args = p.parse_args(argv)
    data = archive()
    digest = hashlib.sha256(data).hexdigest()
    text = MANIFEST.read_text()
    current = re.search(r"sha256: ([0-9a-f]{64})", text)
    if current and current.group(1) == digest:
        print(f"{MANIFEST.relative_to(REPO)}: sha256 {digest} is current")
    elif args.check:
        print(
            f"{MANIFEST.relative_to(REPO)}: sha256 is stale; run python -m hack.krew",
            file=sys.stderr,
        )
        return 1
    else:
        MANIFEST.write_text(re.sub(r"sha256: \S+", f"sha256: {digest}", text))
        print(f"wrote sha256 {digest} into {MANIFEST.relative_to(REPO)}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / ARCHIVE).write_bytes(data)
        print(f"wrote {args.out / ARCHIVE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build (once) and cache the Debian sid root filesystem that carries Asterisk 22."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

MARKER = ".centralino-rootfs-ok"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["asterisk", "asterisk-modules", "asterisk-core-sounds-en"]


def ensure_rootfs(cache_dir: Path) -> Path:
    """Return the cached rootfs, building it first when missing (about 30 s, ~450 MB)."""
    from gateway.sandbox.instance import SandboxError

    root = cache_dir / "rootfs"
    if (root / MARKER).exists():
        return root
    if os.geteuid() != 0:
        raise SandboxError("building the Asterisk rootfs needs root (debootstrap + chroot)")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed: apt-get install debootstrap")
    tmp = cache_dir / "rootfs.building"
    shutil.rmtree(tmp, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    steps = [
        ["debootstrap", "--variant=minbase", "sid", str(tmp), MIRROR],
        ["chroot", str(tmp), "apt-get", "update", "-qq"],
        ["chroot", str(tmp), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
         "--no-install-recommends", *PACKAGES],
        ["chroot", str(tmp), "apt-get", "clean"],
    ]
    for i, cmd in enumerate(steps):
        r = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
            hint = " (no network to the Debian mirror?)" if i < 3 else ""
            raise SandboxError(f"rootfs build failed at `{' '.join(cmd[:3])}`{hint}:\n" + "\n".join(tail))
        if i == 0:  # the sid Release file reads as expired on the mirror
            (tmp / "etc/apt/apt.conf.d/99novalid").write_text('Acquire::Check-Valid-Until "false";\n')
    (tmp / MARKER).write_text("ok\n")
    tmp.rename(root)
    return root

"""How Asterisk is run for an instance: from the cached Debian sid chroot, or a system binary.

Why two: Asterisk 22 is not in Debian bookworm, so the embedded set-up brings its own (a chroot
of sid, no Docker engine needed); where Asterisk is installed on the host (``asterisk`` on
PATH, or ``asterisk.binary``), that one is used instead and nothing is built. Either way every
instance keeps its own config, run, spool, log and astdb directories, so instances never mix.

A runtime answers three questions: which command runs Asterisk, where an instance's base
directory is as Asterisk sees it, and where that same path is on this host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway.dialplan.render import DEBIAN_DIRS
from gateway.settings import Settings

MIN_MAJOR = 20  # ARI external media, snoop, CEL JSON extras and the AMI events we read


class RuntimeError_(Exception):
    """Raised as SandboxError by the sandbox: something the operator can fix."""


@dataclass(frozen=True)
class AsteriskDirs:
    modules: str
    share: str  # astdatadir: sounds, documentation
    varlib: str


class ChrootRuntime:
    kind = "sandbox"
    needs_root = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dirs = AsteriskDirs(**DEBIAN_DIRS)

    def base(self, instance: str, state_dir: Path) -> str:
        return f"/var/lib/centralino/{instance}"

    def host_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def run_dir(self, instance: str, base: str) -> str:
        return f"{base}/run"

    def command(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), "/usr/sbin/asterisk", *args]

    def prepare(self) -> None:
        """proc, /dev and /dev/pts inside the chroot (once; shared by instances)."""
        mounts = Path("/proc/mounts").read_text()
        for src, dst, opts in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"]),
                               ("/dev/pts", "dev/pts", ["--bind"])):
            target = f"{self.root}/{dst}"
            if f" {target} " not in mounts:
                subprocess.run(["mount", *opts, src, target], check=True, capture_output=True)

    def describe(self) -> dict[str, str]:
        return {"runtime": self.kind, "rootfs": str(self.root)}


class SystemRuntime:
    kind = "system"
    needs_root = False

    def __init__(self, binary: Path, dirs: AsteriskDirs) -> None:
        self.binary = binary
        self.dirs = dirs

    def base(self, instance: str, state_dir: Path) -> str:
        return str((state_dir / "asterisk").resolve())

    def host_path(self, path: str) -> Path:
        return Path(path)

    def run_dir(self, instance: str, base: str) -> str:
        """Short on purpose: Asterisk's control socket lives here and a Unix socket path has
        at most 107 bytes, which a run dir under a deep data dir easily exceeds."""
        if os.geteuid() == 0:
            parent = Path("/run/centralino")
        else:
            parent = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/centralino-{os.getuid()}") / "centralino"
        path = parent / instance
        if len(str(path / "asterisk.ctl")) > 107:
            raise RuntimeError_(f"run dir {path} is too long for Asterisk's control socket "
                                "(107 bytes at most); use a shorter asterisk.instance")
        return str(path)

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), *args]

    def prepare(self) -> None:
        pass

    def describe(self) -> dict[str, str]:
        return {"runtime": self.kind, "binary": str(self.binary)}


def choose(settings: Settings, build_rootfs) -> ChrootRuntime | SystemRuntime:
    """The runtime ``asterisk.mode`` asks for (``auto``: a system Asterisk when there is one)."""
    a = settings.asterisk
    if a.mode == "external":
        raise RuntimeError_("asterisk.mode is 'external': Asterisk is run elsewhere "
                            "(e.g. docker/compose.yaml); Centralino does not start it")
    if a.mode in ("auto", "system"):
        binary = a.binary or _on_path()
        if binary is not None:
            binary = Path(binary)
            if not (binary.is_file() and os.access(binary, os.X_OK)):
                raise RuntimeError_(f"asterisk.binary {binary} is not an executable file")
            _check_version(binary)
            return SystemRuntime(binary, _system_dirs(settings))
        if a.mode == "system":
            raise RuntimeError_("asterisk.mode is 'system' but no Asterisk is installed: none on "
                                "PATH or in /usr/sbin; install Asterisk 22 or set asterisk.binary")
    return ChrootRuntime(build_rootfs(settings.cache_dir))


def _on_path() -> Path | None:
    found = shutil.which("asterisk") or shutil.which("asterisk", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def _check_version(binary: Path) -> None:
    try:
        r = subprocess.run([str(binary), "-V"], check=False, capture_output=True, text=True,
                           timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError_(f"{binary} -V failed: {exc}") from None
    m = re.search(r"Asterisk (?:certified/)?(\d+)\.", r.stdout)
    if not m:
        raise RuntimeError_(f"{binary} does not look like Asterisk: {r.stdout.strip()[:80]!r}")
    if int(m.group(1)) < MIN_MAJOR:
        raise RuntimeError_(f"{binary} is Asterisk {m.group(1)}; Centralino needs {MIN_MAJOR} or "
                            f"newer (22 is what it is tested with)")


def _system_dirs(settings: Settings) -> AsteriskDirs:
    """Explicit settings first (a packaged or containerised binary), else the usual places."""
    a = settings.asterisk
    modules = a.modules_dir or _first_dir(
        "/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/aarch64-linux-gnu/asterisk/modules",
        "/usr/lib64/asterisk/modules", "/usr/lib/asterisk/modules")
    share = a.share_dir or _first_dir("/usr/share/asterisk", "/var/lib/asterisk")
    if modules is None or share is None:
        raise RuntimeError_("cannot find the system Asterisk's modules or data directory; set "
                            "asterisk.modules_dir and asterisk.share_dir")
    return AsteriskDirs(str(modules), str(share), "/var/lib/asterisk")


def _first_dir(*candidates: str) -> str | None:
    return next((c for c in candidates if Path(c).is_dir()), None)

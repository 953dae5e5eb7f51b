"""A real Asterisk 22 for the demo and the tests, started in seconds from a cached rootfs.

Why a chroot of Debian sid: Asterisk 22 is packaged there and not in bookworm, and a chroot needs
no Docker engine. Several instances (e.g. parallel test runs) share one rootfs; each has its own
config, run, spool, log and astdb directories and its own ports. Credentials are generated per
instance and kept 0600 in the instance's data dir, never hard-coded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from gateway.dialplan.render import render_all
from gateway.sandbox.rootfs import ensure_rootfs
from gateway.settings import Settings


# Test and demo phones: callers dial in, agents answer queue calls.
PHONES = tuple(f"caller{i}" for i in range(1, 5)) + tuple(f"agent{i}" for i in range(1, 5))


class SandboxError(Exception):
    """Something the operator can fix (not root, port in use, boot failed...)."""


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = settings.asterisk.instance
        self.state_dir = settings.data_dir / "sandbox" / self.instance
        self.base = f"/var/lib/centralino/{self.instance}"
        self._root: Path | None = None

    # -- credentials -------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """Generated once per instance; explicit settings win over generated ones."""
        path = self.state_dir / "credentials.json"
        creds: dict[str, str] = {}
        if path.exists():
            creds = json.loads(path.read_text())
        a = self.settings.asterisk
        for key, given in (("ami_password", a.ami_password), ("ari_password", a.ari_password)):
            if given is not None:
                creds[key] = given.get_secret_value()
            creds.setdefault(key, secrets.token_urlsafe(18))
        for phone in PHONES:
            creds.setdefault(f"sip:{phone}", secrets.token_urlsafe(12))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh)
        return creds

    def phone_password(self, endpoint: str) -> str:
        return self.credentials()[f"sip:{endpoint}"]

    def effective_settings(self) -> Settings:
        """These settings with the instance's credentials filled in."""
        c = self.credentials()
        ast = type(self.settings.asterisk).model_validate(self.settings.asterisk.model_dump() | {
            "ami_password": c["ami_password"], "ari_password": c["ari_password"]})
        return self.settings.model_copy(update={"asterisk": ast})

    # -- life cycle --------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = ensure_rootfs(self.settings.cache_dir)
        return self._root

    def _conf(self) -> str:
        return f"{self.base}/etc/asterisk.conf"

    def _asterisk(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", self._conf(), *args],
            capture_output=True, text=True, timeout=timeout)

    def _mount(self) -> None:
        mounts = Path("/proc/mounts").read_text()
        root = str(self.root)
        for src, dst, opts in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--bind"]),
                               ("/dev/pts", "dev/pts", ["--bind"])):
            target = f"{root}/{dst}"
            if f" {target} " not in mounts:
                subprocess.run(["mount", *opts, src, target], check=True, capture_output=True)

    def _write_configs(self) -> None:
        c = self.credentials()
        inst = self.root / self.base.lstrip("/")
        for sub in ("etc", "db", "spool", "run", "log"):
            (inst / sub).mkdir(parents=True, exist_ok=True)
        for name, text in render_all(self.settings, ami_password=c["ami_password"],
                                     ari_password=c["ari_password"], base=self.base,
                                     phones={p: c[f"sip:{p}"] for p in PHONES}).items():
            path = inst / "etc" / name
            path.write_text(text)
            path.chmod(0o600)

    def _check_ports_free(self) -> None:
        import socket

        a = self.settings.asterisk
        for kind, port in (("AMI", a.ami_port), ("HTTP/ARI", a.http_port)):
            deadline = time.monotonic() + 10  # sockets of a killed instance take a moment to go
            while True:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind((a.host, port))
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise SandboxError(f"{kind} port {a.host}:{port} is already in use") from None
                time.sleep(0.2)

    def pid(self) -> int | None:
        path = self.root / self.base.lstrip("/") / "run" / "asterisk.pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def up(self) -> Settings:
        """Start (or find running) and wait until fully booted; returns effective settings."""
        if os.geteuid() != 0:
            raise SandboxError("the Asterisk sandbox needs root (it uses chroot and mount)")
        if not self.is_running():
            self._check_ports_free()
            self._write_configs()
            self._mount()
            log = open(self.state_dir / "console.log", "ab")
            subprocess.Popen(
                ["setsid", "chroot", str(self.root), "/usr/sbin/asterisk", "-f", "-C", self._conf()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
        deadline = time.monotonic() + self.settings.asterisk.boot_timeout_s
        while time.monotonic() < deadline:
            try:
                r = self._asterisk("-rx", "core waitfullybooted", timeout=5)
                if r.returncode == 0:
                    return self.effective_settings()
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        tail = (self.state_dir / "console.log").read_text(errors="replace").splitlines()[-15:]
        raise SandboxError("Asterisk did not boot in time; last log lines:\n" + "\n".join(tail))

    def cli(self, command: str) -> str:
        r = self._asterisk("-rx", command)
        if r.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def down(self, timeout: float = 10) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            self._asterisk("-rx", "core stop now", timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
        if self.pid() is not None:
            self.kill()

    def kill(self) -> None:
        """Hard kill, as a crash would (for reconnect tests)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.05)

    def status(self) -> dict[str, object]:
        a = self.settings.asterisk
        return {"instance": self.instance, "running": self.is_running(), "pid": self.pid(),
                "rootfs": str(self.root), "sip": f"{a.host}:{a.sip_port}",
                "ami": f"{a.host}:{a.ami_port}", "ari": f"http://{a.host}:{a.http_port}/ari"}


def _alive(pid: int) -> bool:
    """True for a live process; reaps it when it is our own exited child (no zombies)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


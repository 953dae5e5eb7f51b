"""A real Asterisk 22 for the demo and the tests, started in seconds.

It runs from a cached Debian sid chroot (Asterisk 22 is packaged there and not in bookworm; a
chroot needs no Docker engine), or from the host's own Asterisk when one is installed (see
:mod:`gateway.sandbox.runtime`). Several instances (e.g. parallel test runs) can run at once;
each has its own config, run, spool, log and astdb directories and its own ports. Credentials
are generated per instance and kept 0600 in the instance's data dir, never hard-coded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from gateway.dialplan.flow import load_flow
from gateway.dialplan.problems import ConfigError
from gateway.dialplan.prompts import PromptError, render_prompts
from gateway.dialplan.render import render_all
from gateway.dialplan.secrets import install_secrets
from gateway.dialplan.site import Site, load_site, site_path
from gateway.sandbox import runtime as rt
from gateway.sandbox.rootfs import ensure_rootfs
from gateway.settings import Settings


class SandboxError(Exception):
    """Something the operator can fix (not root, port in use, boot failed...)."""


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = settings.asterisk.instance
        self.state_dir = settings.data_dir / "sandbox" / self.instance
        self._runtime: rt.ChrootRuntime | rt.SystemRuntime | None = None
        self._site: Site | None = None

    # -- site and credentials ----------------------------------------------------------------
    @property
    def site(self) -> Site:
        """The site file of the configured dialplans dir (phones, queues, IVR numbers)."""
        if self._site is None:
            try:
                self._site = load_site(site_path(self.settings.dialplans_path))
            except ConfigError as exc:
                raise SandboxError(f"the site file has errors:\n{exc}") from None
        return self._site

    def credentials(self) -> dict[str, str]:
        """Generated once per instance (0600); explicit settings win over generated ones."""
        a = self.settings.asterisk
        return install_secrets(
            self.state_dir / "credentials.json", list(self.site.phones),
            a.ami_password.get_secret_value() if a.ami_password else None,
            a.ari_password.get_secret_value() if a.ari_password else None)

    def phone_password(self, endpoint: str) -> str:
        try:
            return self.credentials()[f"sip:{endpoint}"]
        except KeyError:
            raise SandboxError(f"no phone {endpoint!r} in the site file") from None

    def effective_settings(self) -> Settings:
        """These settings with the instance's credentials and prompts dir filled in."""
        c = self.credentials()
        ast = type(self.settings.asterisk).model_validate(self.settings.asterisk.model_dump() | {
            "ami_password": c["ami_password"], "ari_password": c["ari_password"],
            "prompts_dir": f"{self.base}/sounds",
            "cel_url": self.settings.asterisk.cel_url
            or f"sqlite:///{self.host_path(self.base + '/log/cel.db')}"})
        return self.settings.model_copy(update={"asterisk": ast})

    # -- life cycle --------------------------------------------------------------------------
    @property
    def runtime(self) -> rt.ChrootRuntime | rt.SystemRuntime:
        """Chosen once by ``asterisk.mode`` (a system Asterisk when there is one, in ``auto``)."""
        if self._runtime is None:
            try:
                self._runtime = rt.choose(self.settings, ensure_rootfs)
            except rt.RuntimeError_ as exc:
                raise SandboxError(str(exc)) from None
        return self._runtime

    @property
    def root(self) -> Path:
        """The chroot's root (chroot runtime only)."""
        runtime = self.runtime
        if not isinstance(runtime, rt.ChrootRuntime):
            raise SandboxError("this instance runs the system Asterisk, not the chroot")
        return runtime.root

    @property
    def base(self) -> str:
        """The instance's directory as Asterisk sees it."""
        return self.runtime.base(self.instance, self.state_dir)

    def host_path(self, path: str) -> Path:
        """Where a path Asterisk sees is on this host."""
        return self.runtime.host_path(path)

    @property
    def run_dir(self) -> str:
        """Pid file and control socket, as Asterisk sees them."""
        try:
            return self.runtime.run_dir(self.instance, self.base)
        except rt.RuntimeError_ as exc:
            raise SandboxError(str(exc)) from None

    def _conf(self) -> str:
        return f"{self.base}/etc/asterisk.conf"

    def _asterisk(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run(self.runtime.command("-C", self._conf(), *args),
                              check=False, capture_output=True, text=True, timeout=timeout)

    def _write_configs(self) -> None:
        c = self.credentials()
        site = self.site
        inst = self.host_path(self.base)
        for sub in ("etc", "db", "spool", "log", "sounds"):
            (inst / sub).mkdir(parents=True, exist_ok=True)
        self.host_path(self.run_dir).mkdir(parents=True, exist_ok=True)
        for name, text in render_all(self.settings, site, ami_password=c["ami_password"],
                                     ari_password=c["ari_password"], base=self.base,
                                     phones={p: c[f"sip:{p}"] for p in site.phones},
                                     cel_sqlite_path=f"{self.base}/log/cel",
                                     dirs=vars(self.runtime.dirs), rundir=self.run_dir).items():
            path = inst / "etc" / name
            path.write_text(text)
            path.chmod(0o600)
        flows_dir = self.settings.flows_path
        try:
            for flow in sorted(set(site.ivr.values())):
                render_prompts(load_flow(flows_dir / f"{flow}.yaml", site), inst / "sounds",
                               self.settings.cache_dir)
        except (ConfigError, PromptError) as exc:
            raise SandboxError(f"cannot render the IVR prompts:\n{exc}") from None

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
        try:
            path = self.host_path(self.run_dir) / "asterisk.pid"
        except SandboxError:
            return None
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def up(self) -> Settings:
        """Start (or find running) and wait until fully booted; returns effective settings."""
        runtime = self.runtime
        if runtime.needs_root and os.geteuid() != 0:
            raise SandboxError("the Asterisk sandbox needs root (it uses chroot and mount); or "
                               "install Asterisk 22 on this host and use asterisk.mode = system")
        if not self.is_running():
            self._check_ports_free()
            self._write_configs()
            runtime.prepare()
            with open(self.state_dir / "console.log", "ab") as log:
                subprocess.Popen(
                    ["setsid", *runtime.command("-f", "-C", self._conf())],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
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
                **self.runtime.describe(), "sip": f"{a.host}:{a.sip_port}",
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


"""Per-installation secrets (AMI/ARI passwords, each phone's SIP password), generated once.

Why generated: a shipped default password is a known password. The file is created 0600 and
rewritten atomically; secrets given explicitly in settings win over generated ones.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


class SecretsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"secrets file {self.path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise OSError(f"secrets file {self.path} is not a JSON object")
        return {str(k): str(v) for k, v in data.items()}

    def ensure(self, keys: list[str], given: dict[str, str | None] | None = None,
               nbytes: int = 18) -> dict[str, str]:
        """Every key in ``keys`` (generated when missing), with ``given`` values taking over."""
        data = self.load()
        before = dict(data)
        for k, v in (given or {}).items():
            if v is not None:
                data[k] = v
        for k in keys:
            data.setdefault(k, secrets.token_urlsafe(nbytes))
        if data != before or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        return data


def install_secrets(path: Path, phones: list[str], ami_password: str | None,
                    ari_password: str | None) -> dict[str, str]:
    """AMI/ARI passwords and one SIP password per phone (keys ``sip:<phone>``)."""
    return SecretsFile(path).ensure(
        ["ami_password", "ari_password"] + [f"sip:{p}" for p in phones],
        {"ami_password": ami_password, "ari_password": ari_password})

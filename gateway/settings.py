"""One typed settings object for the whole gateway.

Settings come, strongest first, from: keyword arguments (tests), environment variables
(``CENTRALINO_`` prefix, ``__`` between nested names, e.g. ``CENTRALINO_DATABASE__URL``), the TOML
file named by ``CENTRALINO_CONFIG`` (or ``./centralino.toml`` when present), then the defaults
below. Defaults are the embedded set-up: SQLite in the data dir, a sandbox Asterisk on loopback.

Secrets are ``SecretStr`` so that ``repr()`` and logs never show them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "centralino"


class DatabaseSettings(BaseModel):
    """Where call records, customers and users live (one database for all of them)."""

    url: str | None = None  # None -> SQLite file in data_dir
    echo: bool = False


class AsteriskSettings(BaseModel):
    """How to reach (or start) Asterisk. Every listener binds to ``host``, loopback by default."""

    mode: Literal["auto", "sandbox", "system", "external"] = "auto"
    binary: Path | None = None  # a system Asterisk binary; None -> look on PATH in "auto"/"system"
    instance: str = "default"  # sandbox instance name: separate config/run dirs, same rootfs
    host: str = "127.0.0.1"
    sip_port: int = 5060
    ami_port: int = 5038
    http_port: int = 8088  # ARI REST + websocket
    rtp_start: int = 10000
    rtp_end: int = 10999
    rtcp_interval_ms: int = 500
    ami_username: str = "centralino"
    ami_password: SecretStr | None = None  # None -> generated per sandbox
    ari_username: str = "centralino"
    ari_password: SecretStr | None = None  # None -> generated per sandbox
    ari_app: str = "centralino"
    boot_timeout_s: float = 20.0


class AMISettings(BaseModel):
    """Connector tuning: the defaults suit a PBX on the same host."""

    action_timeout_s: float = 10.0
    keepalive_interval_s: float = 20.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_frame_bytes: int = 1 << 20


class HTTPSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080


class SpeechSettings(BaseModel):
    engine: Literal["pocketsphinx", "vosk"] = "pocketsphinx"
    vosk_model_dir: Path | None = None
    flows_dir: Path | None = None  # None -> the shipped dialplans/flows
    default_flow: str = "demo-en"


class AuthSettings(BaseModel):
    token_ttl_s: int = 8 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CENTRALINO_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share"))
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"))
    dialplans_dir: Path | None = None  # None -> the repository's dialplans/
    log_level: str = "INFO"

    database: DatabaseSettings = DatabaseSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    ami: AMISettings = AMISettings()
    http: HTTPSettings = HTTPSettings()
    speech: SpeechSettings = SpeechSettings()
    auth: AuthSettings = AuthSettings()

    @model_validator(mode="after")
    def _ports_make_sense(self) -> Settings:
        a = self.asterisk
        if not (0 < a.rtp_start < a.rtp_end < 65536):
            raise ValueError(f"asterisk.rtp_start..rtp_end must be an increasing port range, got {a.rtp_start}..{a.rtp_end}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("CENTRALINO_CONFIG")
        toml_file = Path(path) if path else Path("centralino.toml")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        elif path:
            raise FileNotFoundError(f"CENTRALINO_CONFIG names {path}, which does not exist")
        return tuple(sources)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'centralino.db'}"

    @property
    def dialplans_path(self) -> Path:
        return self.dialplans_dir or REPO_DIALPLANS

    @property
    def flows_path(self) -> Path:
        return self.speech.flows_dir or self.dialplans_path / "flows"


REPO_DIALPLANS = Path(__file__).resolve().parent.parent / "dialplans"

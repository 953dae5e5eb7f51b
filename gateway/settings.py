"""One typed settings object for the whole gateway.

Settings come, strongest first, from: keyword arguments (tests), environment variables
(``CENTRALINO_`` prefix, ``__`` between nested names, e.g. ``CENTRALINO_DATABASE__URL``), the TOML
file named by ``CENTRALINO_CONFIG`` (or ``./centralino.toml`` when present), then the defaults
below. Defaults are the embedded set-up: SQLite in the data dir, a sandbox Asterisk on loopback.

Secrets are ``SecretStr`` so that ``repr()`` and logs never show them.
"""

from __future__ import annotations

import ipaddress
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
    modules_dir: Path | None = None  # a system Asterisk's modules (None: the usual places)
    share_dir: Path | None = None  # a system Asterisk's data dir with sounds (None: usual places)
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
    # The address phones reach Asterisk at when it is behind NAT (None: the same as host).
    external_address: str | None = None
    # Networks allowed to log in to AMI (CIDR); add the gateway's when it is not on this host.
    ami_permit: list[str] = Field(default_factory=lambda: ["127.0.0.1/32"])
    # Where Asterisk finds the IVR prompts (as Asterisk sees the path); the sandbox sets its own.
    prompts_dir: str = "/var/lib/centralino/sounds"
    # Where the gateway reads Asterisk's CEL trail to reconcile calls it missed: a SQLite file
    # (the sandbox sets it) or PostgreSQL (cel_pgsql into table asterisk_cel). None: no trail.
    cel_url: str | None = None
    reconcile_lookback_s: int = 24 * 3600  # at start, backfill calls that ended this recently
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
    # Per-language Vosk model dirs, e.g. {"it": "/srv/models/vosk-model-small-it-0.22"}; models
    # installed with `centralino speech models install` are found without this.
    vosk_models: dict[str, Path] = {}
    flows_dir: Path | None = None  # None -> the shipped dialplans/flows
    default_flow: str = "demo-en"


class AuthSettings(BaseModel):
    """Desktop/API logins (see cti.auth): bearer tokens that expire and can be revoked."""

    token_ttl_s: int = 8 * 3600
    login_max_failures: int = 5  # per username within the window, then 429 until it slides
    login_max_failures_per_ip: int = 20
    login_window_s: float = 300.0
    ws_auth_timeout_s: float = 10.0  # a websocket must authenticate within this
    ws_recheck_s: float = 30.0  # open websockets re-check their token (logout, disable, expiry)
    principal_cache_s: float = 5.0  # how long a checked token is trusted without the database


class CTISettings(BaseModel):
    """Screen pop, agent desktop and customer history (package ``cti``)."""

    # "db" (the customers table) or "module:Class" implementing cti.customers.CustomerDirectory
    directory: str = "db"
    repeat_window_days: int = 7
    history_limit: int = 5  # past interactions in a pop
    pause_reasons: tuple[str, ...] = ("break", "lunch", "training", "meeting", "coaching")
    # disposition code -> outcome recorded on the interaction
    dispositions: dict[str, str] = {
        "resolved": "resolved", "info_given": "resolved", "callback_needed": "follow_up",
        "escalated": "follow_up", "complaint": "follow_up", "wrong_number": "no_action"}
    # Caller IDs that are not numbers (internal extensions, sandbox phone names) -> the E.164
    # number they stand for in customer lookups, e.g. {"caller2": "+39 02 1234567"}.
    caller_aliases: dict[str, str] = {}


class QualitySettings(BaseModel):
    """Voice quality, handle time, coaching review and dashboards (package gateway.quality)."""

    push_hangup_handler: bool = True  # push centralino-hangup on every PJSIP channel over AMI
    acw_max_s: float = Field(300.0, gt=0)  # an after-call work still open is closed here, flagged
    review_mos_below: float = 3.6  # calls flagged for a supervisor's review...
    review_hold_over_s: float = 120.0
    review_transfers_over: int = 1
    repeat_window_days: int = 7
    cti_wait_s: float = 10.0  # how long to wait for the CTI's interaction row (repeat contact)
    stale_leg_s: float = 6 * 3600.0  # RTCP of a leg whose call was never saved is dropped then
    dashboard_days: int = Field(30, ge=1, le=366)  # default period of the dashboards
    default_service_level_s: float = 20.0  # for a queue the site file does not list
    # /metrics holds aggregates only; set this to make scrapers send "Bearer <token>"
    metrics_token: SecretStr | None = None


class IvrSettings(BaseModel):
    """The speech IVR runner (package gateway.ivr): where the caller's audio comes in, and the
    guards that keep a caller from waiting in silence when something is slow or broken."""

    media_host: str = "127.0.0.1"  # the gateway's RTP socket; Asterisk sends the audio here
    rtp_port_start: int = 0  # 0: any free port the kernel picks
    rtp_port_end: int = 0
    decode_timeout_s: float = Field(3.0, gt=0)  # end of speech -> intent, else fallback
    prompt_timeout_s: float = Field(60.0, gt=0)  # a prompt that never reports its end
    db_timeout_s: float = Field(3.0, gt=0)  # saving the transcript may not delay the transfer
    fallback_queue: str = "customer_care"  # when even the flow is unknown (bad Stasis arguments)


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
    cti: CTISettings = CTISettings()
    ivr: IvrSettings = IvrSettings()
    quality: QualitySettings = QualitySettings()

    @model_validator(mode="after")
    def _ports_make_sense(self) -> Settings:
        a = self.asterisk
        for net in a.ami_permit:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"asterisk.ami_permit: {net!r} is not a network like 10.0.0.0/8") from None
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

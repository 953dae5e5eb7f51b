"""Settings load from TOML and environment without leaking secrets; migrations run on both stores."""

import pytest
from sqlalchemy import inspect

from gateway.db.engine import make_engine, normalise_url
from gateway.db.migrate import upgrade
from gateway.settings import Settings


def test_environment_overrides_toml_and_secrets_stay_hidden(tmp_path, monkeypatch):
    cfg = tmp_path / "centralino.toml"
    cfg.write_text('[asterisk]\nami_port = 6038\nami_password = "from-toml"\n[http]\nport = 9000\n')
    monkeypatch.setenv("CENTRALINO_CONFIG", str(cfg))
    monkeypatch.setenv("CENTRALINO_HTTP__PORT", "9100")
    s = Settings()
    assert s.asterisk.ami_port == 6038
    assert s.http.port == 9100
    assert s.asterisk.ami_password.get_secret_value() == "from-toml"
    assert "from-toml" not in repr(s) and "from-toml" not in str(s.model_dump())


def test_missing_config_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CENTRALINO_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        Settings()


def test_rtp_range_must_increase():
    with pytest.raises(ValueError, match="rtp_start..rtp_end"):
        Settings(asterisk={"rtp_start": 20000, "rtp_end": 10000})


def test_default_database_is_an_sqlite_file_in_the_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'centralino.db'}"


def test_plain_urls_get_async_drivers():
    assert normalise_url("sqlite:///x.db").startswith("sqlite+aiosqlite:")
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+asyncpg:")


async def test_migrations_upgrade_every_branch_on_each_backend(db_url):
    await upgrade(db_url)
    await upgrade(db_url)  # idempotent: a restarted gateway upgrades again safely
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    await engine.dispose()
    assert "alembic_version" in tables


def test_db_upgrade_creates_the_sqlite_file_and_reports_every_branch_head(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, CENTRALINO_DATA_DIR=str(tmp_path / "new" / "dir"))
    cli = [sys.executable, "-m", "gateway.cli.entry", "--log-level", "WARNING", "db"]
    r = subprocess.run(cli + ["upgrade"], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "is up to date" in r.stdout, r.stderr
    r = subprocess.run(cli + ["current"], env=env, capture_output=True, text=True, check=False)
    assert "0004_asterisk_cel" in r.stdout.split()


def test_db_upgrade_on_an_unreachable_server_is_one_clear_line_without_the_password():
    import os
    import subprocess
    import sys

    env = dict(os.environ, CENTRALINO_DATABASE__URL="postgresql://u:topsecret@127.0.0.1:1/x")
    r = subprocess.run([sys.executable, "-m", "gateway.cli.entry", "db", "upgrade"], env=env,
                       capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 1 and "migration failed on postgresql+asyncpg://u:***@127.0.0.1:1/x" in r.stderr
    assert "topsecret" not in r.stderr + r.stdout and "Traceback" not in r.stderr

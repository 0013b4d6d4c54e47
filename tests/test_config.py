"""Configuration: defaults, the example file, env overrides, errors naming the key."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, load_config
from models.session import async_url

ROOT = Path(__file__).resolve().parents[1]


def test_example_file_documents_every_key_with_the_defaults():
    cfg = load_config(ROOT / "config.example.toml", env={})
    default = Config()
    for section in dataclasses.fields(Config):
        if section.name == "base_dir":
            continue
        assert getattr(cfg, section.name) == getattr(default, section.name), section.name
    text = (ROOT / "config.example.toml").read_text()
    for section in dataclasses.fields(Config):
        if section.name == "base_dir":
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(getattr(default, section.name)):
            assert f"\n{key.name} = " in text, f"{section.name}.{key.name} not documented"


def test_no_file_gives_defaults_and_env_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={"SOPBOT_TELEGRAM_TOKEN": "123:abc",
                           "SOPBOT_DATABASE_URL": "postgresql://postgres@127.0.0.1/test"})
    assert cfg.telegram.token == "123:abc"
    assert cfg.database_url == "postgresql://postgres@127.0.0.1/test"
    assert load_config(env={}).database_url == f"sqlite:///{tmp_path}/data/sopbot.db"


@pytest.mark.parametrize("body, key", [
    ("[telegram]\ntokn = 'x'\n", "[telegram] tokn"),
    ("[reminders]\nshare_of_time = 2.0\n", "reminders.share_of_time"),
    ("[calendar]\noffice_start = 'pagi'\n", "calendar.office_start"),
    ("[calendar]\nextra_holidays = ['2024-13-01']\n", "calendar.extra_holidays[0]"),
    ("[storage]\nmax_evidence_mb = 'besar'\n", "storage.max_evidence_mb"),
    ("[numbering]\nformat = '{nomor}'\n", "numbering.format"),
    ("[telegram]\nmode = 'webhook'\n", "telegram.webhook_url"),
    ("[reminders]\nescalation = { staf = 'bupati' }\n", "reminders.escalation.staf"),
    ("[bogus]\n", "[bogus]"),
    ("[measurement]\nanalysis_threshold = 0\n", "measurement.analysis_threshold"),
    ("[measurement]\nanalysis_mandatory = 'ya'\n", "measurement.analysis_mandatory"),
    ("[outbox]\nper_chat_interval_seconds = -1\n", "outbox.per_chat_interval_seconds"),
])
def test_bad_config_names_the_key(tmp_path, body, key):
    p = tmp_path / "config.toml"
    p.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert key in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="tidak ditemukan"):
        load_config(tmp_path / "nope.toml", env={})


def test_plain_urls_get_async_drivers():
    assert async_url("sqlite:///data/x.db") == "sqlite+aiosqlite:///data/x.db"
    assert async_url("postgresql://postgres@127.0.0.1:5432/test") == \
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    with pytest.raises(ValueError, match="tidak didukung"):
        async_url("oracle://x@y/z")

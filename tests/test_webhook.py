"""Webhook mode: a secret token is mandatory, and only updates that carry it are taken."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK = "[telegram]\nmode = 'webhook'\nwebhook_url = 'https://bot.example.go.id/tg/hook'\n"


@pytest.mark.parametrize("secret", ["", "   "])
def test_webhook_mode_without_a_secret_is_refused_naming_the_key(tmp_path, secret):
    p = tmp_path / "config.toml"
    p.write_text(WEBHOOK + f"webhook_secret = '{secret}'\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert "telegram.webhook_secret" in str(err.value)


def test_a_secret_telegram_would_refuse_is_refused(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text(WEBHOOK + "webhook_secret = 'rahasia <kantor> & \"dinas\"'\n")
    with pytest.raises(ConfigError, match="telegram.webhook_secret"):
        load_config(p, env={})


def test_sopbot_run_in_webhook_mode_without_a_secret_does_not_start(tmp_path):
    (tmp_path / "config.toml").write_text(WEBHOOK)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(tmp_path / "config.toml"), "run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "SOPBOT_TELEGRAM_TOKEN": "123:abc"})
    assert done.returncode != 0
    assert "telegram.webhook_secret" in done.stderr

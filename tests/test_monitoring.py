"""Ready to operate: /healthz, /metrics, JSON logs, `sopbot doctor`, `sopbot db upgrade`."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import JsonLogFormatter, doctor_checks
from bot.config import load_config
from bot.telegram import monitoring
from bot.telegram.monitoring import MonitoringServer
from models import Inbox, Outbox
from models.base import utcnow
from models.enums import OutboxStatus

ROOT = Path(__file__).resolve().parents[1]


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def _metrics(text: str) -> dict[str, float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


@pytest.fixture
async def monitor(sessionmaker):
    server = MonitoringServer(sessionmaker, port=0, max_lag_seconds=60)
    await server.start()
    yield server, f"http://127.0.0.1:{server.port}"
    await server.stop()


async def test_healthz_reports_the_queues_and_fails_when_they_lag(monitor, sessionmaker, office):
    server, url = monitor
    status, body = await _get(url + "/healthz")
    data = json.loads(body)
    assert status == 200 and data["database"] == "ok" and data["problems"] == []
    assert data["inbox_pending"] == 0 and data["outbox_pending"] == 0
    old = utcnow() - timedelta(minutes=5)
    async with sessionmaker() as s, s.begin():
        s.add(Inbox(update_id=7, payload={"update_id": 7}, chat_key=1, received_at=old, error=""))
        s.add(Outbox(person_id=None, chat_id=1, kind="x", payload={"text": "a"},
                     status=OutboxStatus.PENDING, created_at=utcnow()))
    status, body = await _get(url + "/healthz")
    data = json.loads(body)
    # an update waiting 5 minutes with a 60 s bound: the bot is not keeping up
    assert status == 503 and data["status"] == "bermasalah"
    assert data["inbox_pending"] == 1 and data["inbox_lag_seconds"] >= 299
    assert data["outbox_pending"] == 1 and data["outbox_lag_seconds"] < 60
    assert any("update tertua" in p for p in data["problems"])


async def test_healthz_answers_503_when_the_database_is_gone(tmp_path):
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(f"postgresql://nobody@127.0.0.1:1/none")
    server = MonitoringServer(make_sessionmaker(engine), port=0, timeout=5)
    await server.start()
    try:
        status, body = await _get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        await server.stop()
        await engine.dispose()
    data = json.loads(body)
    assert status == 503 and data["database"] == "error"
    assert "basis data tidak menjawab" in data["problems"][0]


async def test_metrics_count_what_the_database_holds_and_what_the_process_saw(
        monitor, sessionmaker, office):
    server, url = monitor
    async with sessionmaker() as s, s.begin():
        for i in range(3):
            s.add(Inbox(update_id=100 + i, payload={}, chat_key=1, received_at=utcnow(),
                        processed_at=utcnow(), error="" if i else "ValueError: x"))
        s.add(Inbox(update_id=200, payload={}, chat_key=2, received_at=utcnow(), error=""))
        for status in (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT,
                       OutboxStatus.FAILED):
            s.add(Outbox(person_id=None, chat_id=1, kind="x", payload={"text": "a"},
                         status=status))
    before = _metrics((await _get(url + "/metrics"))[1])
    monitoring.observe_update(0.03)
    monitoring.observe_429()
    status, text = await _get(url + "/metrics")
    assert status == 200
    m = _metrics(text)
    assert m["sopbot_updates_handled_total{outcome=ok}"] == 2
    assert m["sopbot_updates_handled_total{outcome=error}"] == 1
    assert m["sopbot_inbox_pending"] == 1
    assert m["sopbot_outbox_pending"] == 2  # pending and being sent
    assert m["sopbot_outbox_failed_total"] == 1
    assert m["sopbot_reminders_sent_total"] == 0 and m["sopbot_documents_built_total"] == 0
    # the process's own: one more update observed (in the 0.05 s bucket), one more 429
    assert m["sopbot_handler_seconds_count"] == before["sopbot_handler_seconds_count"] + 1
    assert m["sopbot_handler_seconds_bucket{le=0.05}"] == \
        before["sopbot_handler_seconds_bucket{le=0.05}"] + 1
    assert m["sopbot_telegram_429_total"] == before["sopbot_telegram_429_total"] + 1


def test_json_logs_are_one_object_per_line_with_the_traceback():
    formatter = JsonLogFormatter()
    record = logging.LogRecord("bot.x", logging.INFO, __file__, 1,
                               'Dinas "Tenaga Kerja" & <Perindustrian> %s', ("🏭",), None)
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "INFO" and data["logger"] == "bot.x"
    assert data["message"] == 'Dinas "Tenaga Kerja" & <Perindustrian> 🏭'
    try:
        raise ValueError("baris\nkedua")
    except ValueError:
        record = logging.LogRecord("bot.x", logging.ERROR, __file__, 1, "gagal", (),
                                   sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line and "ValueError: baris\\nkedua" in line
    assert json.loads(line)["exception"].endswith("ValueError: baris\nkedua")


def _sopbot(tmp_path: Path, *args: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))


def test_sopbot_run_logs_json_when_configured(tmp_path):
    (tmp_path / "config.toml").write_text('[logging]\nformat = "json"\n')
    done = _sopbot(tmp_path, "run", env={"SOPBOT_TELEGRAM_TOKEN": ""})
    assert done.returncode == 2  # no token: refuses to start, saying so on stderr
    done = _sopbot(tmp_path, "db", "upgrade")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 0
    assert all(json.loads(line)["level"] for line in lines)


def test_db_upgrade_says_it_created_the_schema_then_that_it_is_current(tmp_path):
    first = _sopbot(tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "Skema basis data dibuat" in first.stdout
    second = _sopbot(tmp_path, "db", "upgrade")
    assert "sudah pada versi terbaru" in second.stdout


def test_doctor_says_what_to_fix_in_indonesian(tmp_path):
    done = _sopbot(tmp_path, "doctor", env={"SOPBOT_TELEGRAM_TOKEN": ""})
    assert done.returncode == 1
    assert "GAGAL Basis data" in done.stdout and "sopbot db upgrade" in done.stdout
    assert "GAGAL Token Telegram" in done.stdout and "@BotFather" in done.stdout
    assert "Perbaiki dahulu" in done.stdout
    assert not (tmp_path / "data" / "sopbot.db").exists()  # looking changes nothing


def test_doctor_passes_against_the_emulator_with_a_current_database(tmp_path):
    from bot.devtools.emulator import EmulatorThread
    from bot.devtools.harness import TEST_TOKEN

    assert _sopbot(tmp_path, "db", "upgrade").returncode == 0
    with EmulatorThread(token=TEST_TOKEN) as emu:
        (tmp_path / "config.toml").write_text(
            f'[telegram]\ntoken = "{TEST_TOKEN}"\napi_base_url = "{emu.base_url}"\n'
            f'file_base_url = "{emu.base_file_url}"\n')
        cfg = load_config(tmp_path / "config.toml", env={})
        checks = {what: (ok, detail) for what, ok, detail in doctor_checks(cfg, env={})}
    assert checks["Basis data"][0] and checks["Migrasi"][0]
    assert checks["Token Telegram"] == (True, f"diterima: @{emu.emulator.bot_username}")
    assert checks["Sertifikat"][0] is None  # no certificate: said, not a failure
    (tmp_path / "config.toml").write_text(
        '[telegram]\ntoken = "1:x"\napi_base_url = "http://127.0.0.1:1/bot"\n')
    cfg = load_config(tmp_path / "config.toml", env={})
    checks = {what: (ok, detail) for what, ok, detail in doctor_checks(cfg, env={})}
    assert checks["Token Telegram"][0] is False
    assert "tidak terjangkau" in checks["Token Telegram"][1]

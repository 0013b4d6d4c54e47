"""The sopbot command line: migrations, people, audit verification."""
from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import models
from bot.cli import main
from bot.devtools.example_data import example_office
from bot.core.office_data import apply_office
from models.session import is_sqlite, make_engine, make_sessionmaker


def _reset(url: str) -> None:
    async def go():
        engine = make_engine(url)
        async with engine.begin() as conn:
            if not is_sqlite(url):
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(go())


def _run(url: str, fn):
    async def go():
        engine = make_engine(url)
        try:
            return await fn(make_sessionmaker(engine), engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def cfg_file(tmp_path, db_url):
    _reset(db_url)
    p = tmp_path / "config.toml"
    p.write_text(f'[database]\nurl = "{db_url}"\n[telegram]\nbot_username = "sopbot_lambar_bot"\n')
    return p


def test_db_upgrade_creates_the_schema_the_models_describe(cfg_file, db_url, capsys):
    assert main(["--config", str(cfg_file), "db", "upgrade"]) == 0
    assert main(["--config", str(cfg_file), "db", "upgrade"]) == 0  # idempotent

    async def diff(sm, engine):
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), models.Base.metadata))

    assert _run(db_url, diff) == []


def test_people_invite_and_list(cfg_file, db_url, capsys):
    assert main(["--config", str(cfg_file), "db", "upgrade"]) == 0

    async def seed(sm, _engine):
        async with sm() as s, s.begin():
            await apply_office(s, example_office(2024))

    _run(db_url, seed)
    capsys.readouterr()
    assert main(["--config", str(cfg_file), "people", "invite", "--nip", "197505052000031005"]) == 0
    out = capsys.readouterr().out
    name, nip, role, code, link = out.strip().split("\t")
    assert role == "kabid" and link == f"https://t.me/sopbot_lambar_bot?start={code}"
    assert main(["--config", str(cfg_file), "people", "invite", "--all"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(example_office(2024).people)
    assert main(["--config", str(cfg_file), "people", "invite", "--nip", "000"]) == 1
    assert main(["--config", str(cfg_file), "people", "list"]) == 0
    out = capsys.readouterr().out
    assert "0 dari 12 pegawai sudah terdaftar" in out
    assert main(["--config", str(cfg_file), "audit", "verify"]) == 0


def test_bad_config_stops_with_the_key(tmp_path, capsys):
    p = tmp_path / "config.toml"
    p.write_text("[database]\nurll = 'x'\n")
    assert main(["--config", str(p), "db", "upgrade"]) == 2
    assert "[database] url" in capsys.readouterr().err


def test_office_add_and_list(cfg_file, db_url, capsys):
    """The regency's operator adds offices (issue 16, item 5): a unit code is one
    office; the list shows each office's people, registrations and open cycles."""
    from models import Office

    cli = ["--config", str(cfg_file)]
    assert main([*cli, "db", "upgrade"]) == 0

    async def seed(sm, _engine):
        async with sm() as s, s.begin():
            await apply_office(s, example_office(2024))

    _run(db_url, seed)
    capsys.readouterr()
    assert main([*cli, "office", "add", "--kode", "II.09", "--nama", "Dinas  Kesehatan",
                 "--zona", "wita"]) == 0
    assert "Kantor ditambahkan: Dinas Kesehatan (kode unit II.09)" in capsys.readouterr().out
    # a unit code already used is refused, by name; an unknown zone by argparse
    assert main([*cli, "office", "add", "--kode", "II.08", "--nama", "Lain"]) == 1
    assert "II.08 sudah dipakai" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*cli, "office", "add", "--kode", "II.10", "--nama", "X", "--zona", "UTC"])
    capsys.readouterr()

    async def offices(sm, _engine):
        async with sm() as s:
            from sqlalchemy import select
            return (await s.execute(select(Office).order_by(Office.id))).scalars().all()

    rows = _run(db_url, offices)
    assert [(o.unit_code, o.name) for o in rows] == [
        ("II.08", example_office(2024).name), ("II.09", "Dinas Kesehatan")]
    assert rows[1].settings == {"calendar": {"timezone": "Asia/Makassar"}}
    assert rows[1].regency == "Kabupaten Lampung Barat"

    assert main([*cli, "office", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    a = next(line for line in lines if line.startswith("II.08"))
    b = next(line for line in lines if line.startswith("II.09"))
    assert a.split()[-4:] == ["WIB", "12", "0", "0"]  # zone, people, registered, cycles
    assert b.split()[-4:] == ["WITA", "0", "0", "0"]
    assert "2 kantor." in lines
    # the new office is an office: people are added to it by its unit code
    assert main([*cli, "people", "add", "--kantor", "II.09", "--name", "Admin Dinkes",
                 "--role", "admin"]) == 0
    capsys.readouterr()
    assert main([*cli, "office", "list"]) == 0
    b = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("II.09"))
    assert b.split()[-4:] == ["WITA", "1", "0", "0"]
    assert main([*cli, "audit", "verify"]) == 0


def test_people_invite_all_names_the_office_and_takes_kantor(cfg_file, db_url, capsys):
    """With two offices `people invite --all` says whose each invitation is; `--kantor`
    invites one office's people only; an unknown code is refused."""
    from dataclasses import replace

    assert main(["--config", str(cfg_file), "db", "upgrade"]) == 0
    other = 'Dinas Kesehatan & "KB" <Lambar> 🏥'

    async def seed(sm, _engine):
        async with sm() as s, s.begin():
            await apply_office(s, example_office(2024))
            await apply_office(s, replace(example_office(2024), unit_code="II.09", name=other))

    _run(db_url, seed)
    people = len(example_office(2024).people)
    capsys.readouterr()
    assert main(["--config", str(cfg_file), "people", "invite", "--all"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 * people
    offices = [line.split("\t")[0] for line in lines]
    assert offices == ["II.08 Dinas Tenaga Kerja dan Perindustrian"] * people + \
        [f"II.09 {other}"] * people
    assert main(["--config", str(cfg_file), "people", "invite", "--all",
                 "--kantor", "II.09"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == people and all(line.startswith(f"II.09 {other}\t") for line in lines)
    assert main(["--config", str(cfg_file), "people", "invite", "--all",
                 "--kantor", "II.99"]) == 2
    assert "II.99 tidak ditemukan" in capsys.readouterr().err

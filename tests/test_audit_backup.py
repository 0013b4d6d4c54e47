"""The audit trail detects tampering; a backup of a running SQLite database restores."""
from __future__ import annotations

import asyncio

from sqlalchemy import select, text, update

from bot.core.audit import verify
from bot.cli import main
from bot.core.workflow import Workflow
from models import AuditLog, Cycle
from models.enums import CycleKind, Role
from models.session import is_sqlite
from tests.helpers import person


async def _some_history(sessionmaker, services):
    async with sessionmaker() as s, s.begin():
        kadis = await person(s, Role.KADIS)
        sek = await person(s, Role.SEKRETARIS)
        wf = Workflow(s, services)
        cycle = await wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, 3, "Mulai")
        run = (await wf.current_steps(cycle.id))[0]
        await wf.forward_disposition(sek, run.id, "Teruskan")


async def test_changed_row_is_detected(sessionmaker, services, office):
    await _some_history(sessionmaker, services)
    async with sessionmaker() as s:
        result = await verify(s)
        assert result.ok and result.rows >= 4
    async with sessionmaker() as s, s.begin():
        row = (await s.execute(select(AuditLog).order_by(AuditLog.id).limit(1))).scalar_one()
        await s.execute(update(AuditLog).where(AuditLog.id == row.id)
                        .values(payload=row.payload.replace("Mulai", "Ubah")))
    async with sessionmaker() as s:
        result = await verify(s)
    assert not result.ok and any("diubah" in p for p in result.problems)


async def test_deleted_rows_are_detected(sessionmaker, services, office):
    await _some_history(sessionmaker, services)
    async with sessionmaker() as s, s.begin():
        ids = (await s.execute(select(AuditLog.id).order_by(AuditLog.id))).scalars().all()
        await s.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": ids[1]})
    async with sessionmaker() as s:
        result = await verify(s)
    assert not result.ok and any("terputus" in p for p in result.problems)
    # the last row deleted
    async with sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": ids[-1]})
    async with sessionmaker() as s:
        assert not (await verify(s)).ok


def test_backup_of_postgresql_points_to_pg_dump(tmp_path, db_url, capsys):
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text('[database]\nurl = "postgresql://postgres@127.0.0.1:5432/test"\n')
    assert main(["--config", str(cfg_file), "backup", str(tmp_path / "out")]) == 1
    assert "pg_dump" in capsys.readouterr().err


def test_backup_of_a_running_database_restores(tmp_path, db_url, config, services, sessionmaker,
                                               engine):
    if not is_sqlite(db_url):
        db_url = f"sqlite:///{tmp_path / 'test.db'}"  # the online backup is SQLite's
        config.database.url = db_url
        from models.session import make_engine, make_sessionmaker
        import models
        eng = make_engine(db_url)

        async def create():
            async with eng.begin() as c:
                await c.run_sync(models.Base.metadata.create_all)
        asyncio.new_event_loop().run_until_complete(create())
        sessionmaker = make_sessionmaker(eng)
    from bot.devtools.example_data import example_office
    from bot.core.office_data import apply_office

    async def seed():
        async with sessionmaker() as s, s.begin():
            await apply_office(s, example_office(2024))
            f = await services.store.put(s, b"bukti dukung", "bukti.pdf", "application/pdf")
        await _some_history(sessionmaker, services)
        return f.sha256

    loop = asyncio.new_event_loop()
    sha = loop.run_until_complete(seed())
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(f'[database]\nurl = "{db_url}"\n[storage]\npath = "{config.storage_dir}"\n')
    out = tmp_path / "cadangan"
    assert main(["--config", str(cfg_file), "backup", str(out)]) == 0
    assert main(["--config", str(cfg_file), "backup", str(out)]) == 1  # not over a full folder
    restored = tmp_path / "restored.toml"
    restored.write_text(f'[database]\nurl = "sqlite:///{out / "test.db"}"\n'
                        f'[storage]\npath = "{out / "files"}"\n')
    assert main(["--config", str(restored), "audit", "verify"]) == 0
    assert (out / "files" / sha[:2] / sha).read_bytes() == b"bukti dukung"

    async def count():
        from models.session import make_engine, make_sessionmaker
        eng = make_engine(f"sqlite:///{out / 'test.db'}")
        async with make_sessionmaker(eng)() as s:
            n = len((await s.execute(select(Cycle))).scalars().all())
        await eng.dispose()
        return n

    assert loop.run_until_complete(count()) == 1
    loop.close()

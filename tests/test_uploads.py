"""Uploads cannot stall or exhaust the bot, and what is stored stays private.

* An .xlsx is measured (uncompressed size, cell count) before any reader opens it; over
  the limits of ``[uploads]`` it is refused with an Indonesian message.
* While the Kasubag's 2,000,000-cell workbook is being refused, another person's
  ``/bantuan`` is answered within a second (the check runs in a worker thread).
* Evidence counts against a quota per person per cycle; over it, nothing is stored.
* Stored files, the database (with -wal/-shm), backups, the archive zip and the demo's
  folder are 0600 (files) and 0700 (folders), whatever the process umask.
"""
from __future__ import annotations

import asyncio
import io
import os
import random
import stat
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.config import Config
from bot.storage import FileStore
from bot.uploads import too_large_text
from models import Evidence, StoredFile
from models.enums import Role
from reports.xlsx_limits import XlsxLimits, XlsxTooLarge, check_xlsx
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import answer, press_and_wait, to_collection

MB = 1024 * 1024
SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def sheet_zip(body: bytes, *, extra: dict[str, bytes] | None = None, level: int = 1) -> bytes:
    """A zip holding one worksheet part (enough for the checks, which read no more)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("[Content_Types].xml", b"<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", body)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def cells_xml(rows: int, cols: int, *, prefix: str = "", seed: int = 11) -> bytes:
    """``rows`` x ``cols`` number cells; ``prefix`` "x:" writes namespace-prefixed tags."""
    rnd = random.Random(seed)
    p = prefix
    templates = [f"<{p}row>" + "".join(f"<{p}c><{p}v>{rnd.randrange(10_000)}</{p}v></{p}c>"
                                       for _ in range(cols)) + f"</{p}row>"
                 for _ in range(4096)]
    ns = f' xmlns:{p[:-1]}="{SHEET_NS}"' if p else f' xmlns="{SHEET_NS}"'
    body = "".join(templates[rnd.randrange(4096)] for _ in range(rows))
    return (f'<?xml version="1.0"?><{p}worksheet{ns}><{p}dimension ref="A1:B2"/>'
            f"<{p}sheetData>{body}</{p}sheetData></{p}worksheet>").encode()


@pytest.fixture(scope="module")
def two_million_cells(tmp_path_factory) -> bytes:
    """About 6 MB on the wire, 37 MB of XML, 2,000,000 cells (100,000 rows x 20)."""
    return sheet_zip(cells_xml(100_000, 20))


# ----------------------------------------------------------------- the checks


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated(tmp_path):
    # 60 MB of zeros deflate to about 60 KB
    path = tmp_path / "bom.xlsx"
    path.write_bytes(sheet_zip(b"\0" * (60 * MB), level=9))
    assert path.stat().st_size < MB
    with pytest.raises(XlsxTooLarge) as exc:
        check_xlsx(path, XlsxLimits(max_uncompressed_bytes=50 * MB, max_cells=200_000))
    assert exc.value.kind == "bytes" and exc.value.amount > 60 * MB
    assert too_large_text(exc.value) == (
        "Workbook terlalu besar: isinya 60,0 MB setelah diekstrak, batasnya 50,0 MB. "
        "Tidak ada yang disimpan. Hapus lembar atau baris yang tidak perlu, lalu kirim lagi.")


def test_cells_are_counted_exactly_across_chunks(tmp_path):
    # 30,000 x 7 = 210,000 cells, about 4 MB of XML: several 1 MB chunks
    path = tmp_path / "sel.xlsx"
    path.write_bytes(sheet_zip(cells_xml(30_000, 7)))
    check_xlsx(path, XlsxLimits(100 * MB, 210_000))  # exactly at the limit: accepted
    with pytest.raises(XlsxTooLarge) as exc:
        check_xlsx(path, XlsxLimits(100 * MB, 209_999))
    assert exc.value.kind == "cells" and exc.value.limit == 209_999
    assert too_large_text(exc.value) == (
        "Workbook terlalu besar: berisi lebih dari 209.999 sel (batas jumlah sel). "
        "Tidak ada yang disimpan. Hapus lembar atau baris yang tidak perlu, lalu kirim lagi.")


def test_prefixed_cells_are_never_undercounted(tmp_path):
    """``<x:c>`` is as much a cell to openpyxl as ``<c>``: no prefix slips past."""
    path = tmp_path / "prefiks.xlsx"
    path.write_bytes(sheet_zip(cells_xml(30_000, 7, prefix="x:")))
    with pytest.raises(XlsxTooLarge):
        check_xlsx(path, XlsxLimits(100 * MB, 209_999))
    wb = openpyxl.load_workbook(path.parent / _valid_copy(path), read_only=True)
    try:
        ws = wb.active
        ws.reset_dimensions()  # the sheet's <dimension> says A1:B2
        assert sum(1 for row in ws.iter_rows() for _c in row) == 210_000
    finally:
        wb.close()


def _valid_copy(path: Path) -> str:
    """The prefixed sheet inside a minimal workbook openpyxl opens."""
    body = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    wb = openpyxl.Workbook()
    buf = io.BytesIO()
    wb.save(buf)
    out = path.with_name("prefiks-valid.xlsx")
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, body if item.filename == "xl/worksheets/sheet1.xml"
                         else src.read(item.filename))
    return out.name


def test_cells_of_all_sheets_count_together(tmp_path):
    path = tmp_path / "dua.xlsx"
    path.write_bytes(sheet_zip(cells_xml(100, 10), extra={
        "xl/worksheets/sheet2.xml": cells_xml(100, 10, seed=3)}))
    check_xlsx(path, XlsxLimits(MB, 2_000))
    with pytest.raises(XlsxTooLarge):
        check_xlsx(path, XlsxLimits(MB, 1_999))


def test_a_real_workbook_passes_and_its_cells_are_counted(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in range(1, 51):
        ws.append([f"Indikator <{r}> & \"kutip\" 😀", r, r * 1.5])
    path = tmp_path / "biasa.xlsx"
    wb.save(path)
    check_xlsx(path, XlsxLimits(MB, 150))
    with pytest.raises(XlsxTooLarge):
        check_xlsx(path, XlsxLimits(MB, 149))


def test_config_has_the_upload_limits_with_sensible_defaults(tmp_path):
    from bot.config import ConfigError, load_config

    cfg = Config()
    assert (cfg.uploads.max_xlsx_uncompressed_mb, cfg.uploads.max_xlsx_cells,
            cfg.uploads.max_setup_rows) == (50, 200_000, 10_000)
    assert cfg.uploads.quota_mb_per_cycle >= 1 and cfg.uploads.quota_files_per_cycle >= 1
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    loaded = load_config(example)
    assert loaded.uploads == cfg.uploads  # every key documented there, with its default
    bad = tmp_path / "c.toml"
    bad.write_text("[uploads]\nmax_xlsx_cells = 0\n")
    with pytest.raises(ConfigError, match="uploads.max_xlsx_cells"):
        load_config(bad)


# ----------------------------------------------------------------- over the emulator


async def test_a_two_million_cell_workbook_is_refused_while_others_are_answered_at_once(
        harness, people, sessionmaker, services, clock, two_million_cells):
    """The Kasubag sends back a 'workbook' of 2,000,000 cells at step 6; while it is
    handled, the Kadis's /bantuan is answered within a second, every time."""
    from handlers.common import set_conversation
    from handlers.signoff import COMPILE
    from tests.test_documents_service import drive_to_compile
    from tests.test_workflow import Walk

    walk = Walk(sessionmaker, services, clock)
    _cycle_id, run6 = await drive_to_compile(walk)
    await harness.sender.drain()
    kasubag_p = people.person(Role.KASUBAG)
    async with sessionmaker() as s, s.begin():
        await set_conversation(s, kasubag_p.id, COMPILE, "review", {"run": run6})
    kasubag, kadis = people.user(Role.KASUBAG), people.user(Role.KADIS)
    assert 5 * MB < len(two_million_cells) < 9 * MB
    stored_before = await _count(sessionmaker, StoredFile)

    sent = await kasubag.send_document(two_million_cells, "pengukuran-edit.xlsx")
    refused = asyncio.ensure_future(
        kasubag.wait_for(after=sent, text_contains="Workbook terlalu besar", timeout=60))
    latencies = []
    while not refused.done() or len(latencies) < 3:
        start = time.monotonic()
        asked = await kadis.send_command("/bantuan")
        await kadis.wait_for(after=asked, text_contains="/tugas", timeout=30)
        latencies.append(time.monotonic() - start)
        if len(latencies) > 200:
            break
    msg = await refused
    print("/bantuan latencies while the workbook was handled (s):",
          [round(x, 3) for x in latencies])
    assert "lebih dari 200.000 sel" in msg.text
    assert max(latencies) < 1.0, latencies  # the bound: /bantuan within 1 s
    assert await _count(sessionmaker, StoredFile) == stored_before  # nothing stored


async def _count(sm, model, *where) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))
                ).scalar_one()


async def test_evidence_over_the_quota_is_refused_and_nothing_is_stored(
        harness, people, sessionmaker):
    sm = sessionmaker
    sv = harness.services
    sv.config.uploads.quota_files_per_cycle = 2
    sv.config.uploads.quota_mb_per_cycle = 1
    await to_collection(harness, sm, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    card = await answer(kabid, card, "4,2")

    for i in range(2):
        sent = await kabid.send_document(b"%PDF-1.4 bukti " + str(i).encode(),
                                         f"bukti <{i}> & \"sah\".pdf", "application/pdf")
        await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    files_before = await _count(sm, StoredFile)
    on_disk = sorted(p.name for p in sv.store.root.rglob("*") if p.is_file())

    sent = await kabid.send_document(b"%PDF-1.4 bukti ketiga", "bukti-3.pdf", "application/pdf")
    msg = await kabid.wait_for(after=sent, text_contains="Kuota unggahan")
    assert msg.text == ("Kuota unggahan Anda untuk siklus ini sudah penuh: 2 dari 2 berkas. "
                        "Berkas tidak disimpan. Hubungi admin kantor bila perlu kuota lebih "
                        "besar.")
    assert await _count(sm, StoredFile) == files_before
    assert await _count(sm, Evidence) == 2
    assert sorted(p.name for p in sv.store.root.rglob("*") if p.is_file()) == on_disk

    # the size quota: 1 MB per cycle, 1,5 MB in one file (under the 10 MB file limit)
    sv.config.uploads.quota_files_per_cycle = 10
    big = b"%PDF-1.4 " + b"x" * (3 * MB // 2)
    sent = await kabid.send_document(big, "laporan-besar.pdf", "application/pdf")
    msg = await kabid.wait_for(after=sent, text_contains="Kuota unggahan")
    assert "dari 1 MB" in msg.text and "berkas ini 1,5 MB" in msg.text
    assert await _count(sm, StoredFile) == files_before
    assert sorted(p.name for p in sv.store.root.rglob("*") if p.is_file()) == on_disk
    async with sm() as s:
        added_by = set((await s.execute(select(Evidence.added_by_id))).scalars())
    assert added_by == {people.person(Role.KABID, "PPTK").id}


# ----------------------------------------------------------------- privacy on disk


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # what a default shell gives: files 0644, folders 0755
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_stored_files_are_0600_in_0700_folders(tmp_path, sessionmaker, open_umask):
    store = FileStore(tmp_path / "files")
    async with sessionmaker() as s, s.begin():
        row = await store.put(s, b"%PDF-1.4 rahasia", "bukti.pdf", "application/pdf")
    path = store.path_for(row.sha256)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(store.root) == 0o700


async def test_the_sqlite_database_and_its_wal_and_shm_are_0600(tmp_path, open_umask):
    from sqlalchemy import text

    from models.session import make_engine

    db = tmp_path / "data" / "sopbot.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('Rp 1.250.000.000.000')"))
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(db.parent) == 0o700
    finally:
        await engine.dispose()


def test_migrated_database_and_backup_are_private(tmp_path, open_umask):
    from bot.backup import backup
    from models.migrate import upgrade

    cfg = Config()
    cfg.base_dir = tmp_path
    cfg.database.url = f"sqlite:///{tmp_path / 'db' / 'sopbot.db'}"
    cfg.storage.path = str(tmp_path / "files")
    upgrade(cfg.database_url)
    assert mode(tmp_path / "db" / "sopbot.db") == 0o600
    # a stored file from before this change (0644) is copied as 0600
    old = tmp_path / "files" / "ab" / ("ab" + "0" * 62)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"bukti lama")
    os.chmod(old, 0o644)
    out = tmp_path / "cadangan"
    result = backup(cfg, out)
    assert mode(out) == 0o700 and mode(result.database) == 0o600
    copied = result.files_dir / "ab" / old.name
    assert mode(copied) == 0o600 and mode(copied.parent) == 0o700


def test_the_demo_folder_is_0700(tmp_path, open_umask):
    from bot.demo import Demo

    demo = Demo(tmp_path / "sopbot-demo", quiet=True)
    demo.prepare()
    assert mode(tmp_path / "sopbot-demo") == 0o700


def test_the_cli_process_creates_private_files(tmp_path, open_umask):
    """Everything `sopbot` writes is private, whatever the umask of the shell."""
    from bot.cli import main

    out = tmp_path / "kantor.xlsx"
    assert main(["--config", str(_config_file(tmp_path)), "setup", "template", str(out)]) == 0
    assert mode(out) == 0o600


def _config_file(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n'
                   f'[storage]\npath = "{tmp_path / "files"}"\n')
    return cfg


async def test_the_agenda_export_is_0600(tmp_path, sessionmaker, office, open_umask):
    from bot.archive import export_agenda

    out = tmp_path / "agenda.xlsx"
    async with sessionmaker() as s:
        await export_agenda(s, out, year=2024)
    assert mode(out) == 0o600


def test_a_worksheet_moved_out_of_xl_worksheets_is_still_counted(tmp_path):
    """openpyxl follows the workbook's relationships to a sheet at any path; so does
    the count."""
    wb = openpyxl.Workbook()
    for r in range(30):
        wb.active.append([f"Rp {r:013d} <&>"] * 10)
    buf = io.BytesIO()
    wb.save(buf)
    moved = tmp_path / "pindah.xlsx"
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(moved, "w") as dst:
        for item in src.infolist():
            data, name = src.read(item.filename), item.filename
            if name == "xl/worksheets/sheet1.xml":
                name = "xl/lain/data.xml"
            if name in ("xl/_rels/workbook.xml.rels", "[Content_Types].xml"):
                data = data.replace(b"/xl/worksheets/sheet1.xml", b"/xl/lain/data.xml")
            dst.writestr(name, data)
    ro = openpyxl.load_workbook(moved, read_only=True)
    try:
        assert sum(1 for row in ro.active.iter_rows() for _c in row) == 300
    finally:
        ro.close()
    with pytest.raises(XlsxTooLarge):
        check_xlsx(moved, XlsxLimits(MB, 299))
    check_xlsx(moved, XlsxLimits(MB, 300))


def test_db_upgrade_makes_files_stored_by_an_older_version_private(tmp_path, open_umask):
    from bot.cli import main

    files = tmp_path / "files"
    old = files / "ab" / ("ab" + "1" * 62)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"bukti dari versi lama")
    os.chmod(files, 0o755)
    os.chmod(old.parent, 0o755)
    os.chmod(old, 0o644)
    assert main(["--config", str(_config_file(tmp_path)), "db", "upgrade"]) == 0
    assert (mode(files), mode(old.parent), mode(old)) == (0o700, 0o700, 0o600)
    assert mode(tmp_path / "cli.db") == 0o600

"""Uploads cannot stall or exhaust the bot, and what is stored stays private.

* An .xlsx is measured (uncompressed size, cell count) before any reader opens it; over
  the limits of ``[uploads]`` it is refused with an Indonesian message.
* While the Kasubag's 2,000,000-cell workbook is being refused, another person's
  ``/bantuan`` is answered within a second (the check runs in a worker thread).
* Evidence and the versions rebuilt from edited workbooks count against a quota per
  person per cycle, and a cycle keeps a capped number of versions; over either, nothing
  is stored.
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
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.config import Config
from bot.core.storage import FileStore
from bot.core.uploads import too_large_text
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
    from bot.core.backup import backup
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
    from bot.devtools.demo import Demo

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
    from bot.core.archive import export_agenda

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


# ------------------------------------------- step 6: edited workbooks and versions


def _on_disk(store) -> list[str]:
    return sorted(p.name for p in store.root.rglob("*") if p.is_file())


async def test_edited_workbooks_over_the_quota_and_versions_over_the_cap_store_nothing(
        harness, people, sessionmaker, services, clock):
    """The Kasubag at step 6, over the emulator: each edited workbook sent back stores a
    workbook, a PDF and a chart, and those count against the Kasubag's quota for the
    cycle; "Susun ulang" and uploads together stop at ``max_document_versions``. A
    refusal says why in Indonesian and stores nothing (no Document row, no StoredFile
    row, no file on disk)."""
    from bot.core.uploads import usage
    from models import Document
    from tests.test_documents_service import drive_to_compile
    from tests.test_e2e_signoff import edited_workbook, has_button
    from tests.test_workflow import Walk

    up = services.config.uploads
    up.quota_files_per_cycle = 3  # one uploaded version (3 files), not two
    up.max_document_versions = 3
    kasubag = people.user(Role.KASUBAG)
    kasubag_id = people.person(Role.KASUBAG).id
    walk = Walk(sessionmaker, services, clock)
    cycle_id, _run6 = await drive_to_compile(walk)
    await harness.sender.drain()

    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    q = await kasubag.press(card, text="Susun dokumen")
    v1 = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"), timeout=60)
    xlsx = [f for f in harness.emulator.sent_files(kasubag.chat_id)
            if (f.filename or "").endswith(".xlsx")][-1].data
    assert await _count(sessionmaker, Document) == 1
    async with sessionmaker() as s:  # a compiled version is not an upload
        assert await usage(s, kasubag_id, cycle_id) == (0, 0)

    # the first edited workbook: version 2, its 3 stored files are the Kasubag's usage
    sent = await kasubag.send_document(edited_workbook(xlsx, "PPTK-03", 68),
                                       "pengukuran <TW III> & \"edit\".xlsx")
    v2 = await kasubag.wait_for(after=sent, predicate=has_button("Ajukan untuk paraf"),
                                timeout=60)
    assert "versi 2" in v2.text
    async with sessionmaker() as s:
        doc2 = (await s.execute(select(Document).where(Document.version == 2))).scalar_one()
        sizes = [(await s.get(StoredFile, fid)).size for fid in
                 (doc2.workbook_file_id, doc2.pdf_file_id, doc2.chart_file_id)]
        assert doc2.source == "uploaded" and doc2.created_by_id == kasubag_id
        assert await usage(s, kasubag_id, cycle_id) == (sum(sizes), 3)
    docs, files, disk = (await _count(sessionmaker, Document),
                         await _count(sessionmaker, StoredFile), _on_disk(services.store))

    # the second one would store 3 more files: over the quota of 3, refused
    sent = await kasubag.send_document(edited_workbook(xlsx, "PPTK-03", 1_250_000_000_000),
                                       "pengukuran-edit-2.xlsx")
    msg = await kasubag.wait_for(after=sent, text_contains="Kuota unggahan", timeout=60)
    assert msg.text == ("Kuota unggahan Anda untuk siklus ini sudah penuh: 3 dari 3 berkas. "
                        "Berkas tidak disimpan. Hubungi admin kantor bila perlu kuota lebih "
                        "besar.")
    assert await _count(sessionmaker, Document) == docs
    assert await _count(sessionmaker, StoredFile) == files
    assert _on_disk(services.store) == disk

    # "Susun ulang" is not an upload: version 3, the last one the cap allows
    q = await kasubag.press(v2, text="Susun ulang")
    v3 = await kasubag.wait_for(after=q, predicate=lambda m: has_button("Ajukan untuk paraf")(m)
                                and "versi 3" in m.text.lower(), timeout=60)
    docs, files, disk = (await _count(sessionmaker, Document),
                         await _count(sessionmaker, StoredFile), _on_disk(services.store))
    assert docs == 3

    # a fourth version, compiled or uploaded, is refused: nothing built, nothing stored
    cap = ("Batas versi dokumen untuk siklus ini sudah tercapai: 3 dari 3 versi. Dokumen "
           "tidak disusun ulang dan tidak ada yang disimpan. Ajukan versi terakhir untuk "
           "paraf, atau hubungi admin kantor bila perlu batas yang lebih besar.")
    q = await kasubag.press(v3, text="Susun ulang")
    msg = await kasubag.wait_for(after=q, text_contains="Batas versi dokumen", timeout=60)
    assert msg.text == cap
    up.quota_files_per_cycle = 500  # the cap alone refuses the upload
    sent = await kasubag.send_document(edited_workbook(xlsx, "PPTK-03", 70),
                                       "pengukuran-edit-3.xlsx")
    msg = await kasubag.wait_for(after=sent, text_contains="Batas versi dokumen", timeout=60)
    assert msg.text == cap
    assert await _count(sessionmaker, Document) == docs
    assert await _count(sessionmaker, StoredFile) == files
    assert _on_disk(services.store) == disk
    # the last version can still be submitted
    q = await kasubag.press(kasubag.message(v3.message_id), text="Ajukan untuk paraf")
    await kasubag.wait_for(after=q, text_contains="diajukan kepada")


async def test_an_edited_workbook_over_the_byte_quota_is_refused_and_nothing_is_stored(
        sessionmaker, services, clock, office):
    """At the core: the workbook, PDF and chart of an uploaded version are measured once
    built and before any is written; over the Kasubag's bytes for the cycle the version
    is refused (``QuotaExceeded``), with no Document row, no StoredFile row, no file.
    (A fraction of a MB as the quota is only a test device: the built files are ~100 KB.)"""
    from bot.core.documents import compile_documents, compile_uploaded
    from bot.core.uploads import QuotaExceeded
    from models import Document
    from reports.workbook import RowEdit
    from tests.test_documents_service import drive_to_compile
    from tests.test_workflow import Walk

    walk = Walk(sessionmaker, services, clock)
    cycle_id, _run6 = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)
    await walk(lambda wf, s: _compile(wf, kasubag, cycle_id, compile_documents))
    docs, files, disk = (await _count(sessionmaker, Document),
                         await _count(sessionmaker, StoredFile), _on_disk(services.store))
    services.config.uploads.quota_mb_per_cycle = 0.01  # 10,485 bytes
    edits = {"IND-05": RowEdit(target=None, realisasi=Decimal("1250000000000"),
                               note="Realisasi <APBD> & \"DAK\" 2024 🙂")}
    with pytest.raises(QuotaExceeded) as exc:
        await walk(lambda wf, s: _compile(wf, kasubag, cycle_id, compile_uploaded, edits))
    assert exc.value.message.startswith(
        "Kuota unggahan Anda untuk siklus ini sudah penuh: terpakai 0,0 MB dari ")
    assert "Berkas tidak disimpan." in exc.value.message
    assert await _count(sessionmaker, Document) == docs
    assert await _count(sessionmaker, StoredFile) == files
    assert _on_disk(services.store) == disk
    # within the quota the same upload is version 2
    services.config.uploads.quota_mb_per_cycle = 200
    doc, _data = await walk(lambda wf, s: _compile(wf, kasubag, cycle_id, compile_uploaded,
                                                   edits))
    assert doc.version == 2 and doc.source == "uploaded"


async def _compile(wf, actor, cycle_id, fn, *args):
    return await fn(wf, actor, await wf.get_cycle(cycle_id), *args)

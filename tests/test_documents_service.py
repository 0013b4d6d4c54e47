"""The documents of a cycle, made by the services without Telegram: compile (step 6),
the stamped copy after numbering (step 9), the archive bundle (step 10) and the agenda
book. The PDFs are read back as text, the workbook's capaian formulas are evaluated
and compared with ``reports.measure.capaian``."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from bot.core import archive as archive_service
from bot.core.documents import compile_documents, stamp_numbered, verify_code
from bot.core.workflow import Workflow
from models import CycleIndicator, Delivery, Indicator, StoredFile
from models.enums import CycleKind, DocumentStatus, Polarity, Role, ValueType
from reports.measure import capaian
from tests.helpers import person
from tests.test_workflow import Walk, open_run

# Triwulan III 2024 figures of the example office; None = skipped (no realisation)
VALUES: dict[str, Decimal | str | None] = {
    "SEK-01": "BB", "SEK-02": Decimal("100"), "SEK-03": Decimal("70"),
    "SEK-04": Decimal("80.5"), "SEK-05": None,
    "PPTK-01": Decimal("4.5"), "PPTK-02": Decimal("87"), "PPTK-03": Decimal("65"),
    "PPTK-04": Decimal("210"), "PPTK-05": Decimal("25"), "PPTK-06": Decimal("150"),
    "HIJS-01": Decimal("100"), "HIJS-02": Decimal("55"), "HIJS-03": Decimal("40"),
    "HIJS-04": Decimal("12"), "HIJS-05": Decimal("28"),
    "IND-01": Decimal("80"), "IND-02": Decimal("2.5"), "IND-03": Decimal("18"),
    "IND-04": Decimal("21"), "IND-05": Decimal("8750000000"),
}
UNITS = ("SEK", "PPTK", "HIJS", "IND")
EVIDENCE = {"PPTK-01": b"%PDF-1.4 BPS Sakernas Agustus 2024"}


async def drive_to_compile(walk: Walk, values=None, quarter: int = 3) -> tuple[int, int]:
    """Steps 1-5 through the workflow; returns (cycle id, the open step-6 run id)."""
    values = VALUES if values is None else values
    kadis = await walk.who(Role.KADIS)
    cycle = await walk(lambda wf, s: wf.start_cycle(
        kadis, CycleKind.QUARTERLY, 2024, quarter,
        f"Siapkan pengukuran kinerja triwulan {('I', 'II', 'III', 'IV')[quarter - 1]}"))
    sek = await walk.who(Role.SEKRETARIS)
    run2 = await open_run(walk, cycle.id, 2)
    walk.clock.advance(minutes=3)
    await walk(lambda wf, s: wf.forward_disposition(sek, run2.id, "Mohon dikoordinasikan"))
    kasubag = await walk.who(Role.KASUBAG)
    run3 = await open_run(walk, cycle.id, 3)
    walk.clock.advance(minutes=20)
    await walk(lambda wf, s: wf.open_collection(kasubag, run3.id, None, days=3))
    for code in UNITS:
        kabid = await walk.who(Role.KABID, code)
        run = await open_run(walk, cycle.id, 4, code)
        async with walk.sm() as s:
            items = (await s.execute(
                select(CycleIndicator, Indicator)
                .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
                .where(CycleIndicator.cycle_id == cycle.id,
                       CycleIndicator.unit_id == run.unit_id)
                .order_by(CycleIndicator.position))).all()
        for item, ind in items:
            value = values.get(ind.code)
            if value is None:
                kw = dict(raw_text="", skipped=True, note="Data belum tersedia")
            elif ind.value_type == ValueType.TEXT:
                kw = dict(raw_text=value, value_text=value)
            else:
                kw = dict(raw_text=str(value), value=value)

            async def answer(wf, s, item=item, kw=kw, code=ind.code):
                files = []
                if code in EVIDENCE:
                    f = await wf.sv.store.put(s, EVIDENCE[code], f"bukti-{code}.pdf",
                                              "application/pdf")
                    files = [f.id]
                return await wf.record_answer(kabid, run.id, item.id, evidence_file_ids=files,
                                              **kw)

            await walk(answer)
        walk.clock.advance(minutes=30)
        await walk(lambda wf, s, run=run: wf.submit_unit(kabid, run.id))
    run5 = await open_run(walk, cycle.id, 5)
    walk.clock.advance(hours=2)
    run6 = await walk(lambda wf, s: wf.complete_process(kasubag, run5.id))
    return cycle.id, run6.id


async def sign_off(walk: Walk, cycle_id: int, run6_id: int, doc_id: int) -> int:
    """Steps 6-8 without returns; returns the open step-9 run id."""
    kasubag, sek, kadis = (await walk.who(Role.KASUBAG), await walk.who(Role.SEKRETARIS),
                           await walk.who(Role.KADIS))
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6_id, doc_id))
    walk.clock.advance(minutes=5)
    run8 = await walk(lambda wf, s: wf.approve(sek, run7.id, doc_id))
    walk.clock.advance(minutes=5)
    run9 = await walk(lambda wf, s: wf.approve(kadis, run8.id, doc_id))
    return run9.id


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    return " ".join(text.split())


async def stored_bytes(walk: Walk, file_id: int) -> bytes:
    async with walk.sm() as s:
        return walk.sv.store.read(await s.get(StoredFile, file_id))


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


# ------------------------------------------------------------ formula evaluation
_TOKEN = re.compile(r'\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"]|"")*")|'
                    r'(?P<ref>[A-Z]{1,3}\d+)\b|(?P<fn>[A-Z]+)\(|(?P<op><=|>=|<>|[-+*/=<>(),]))')


class Formula:
    """Evaluates the subset of Excel the capaian formulas use: IF, OR, NOT, ISNUMBER,
    comparisons and arithmetic, on the cell values of one sheet."""

    def __init__(self, text: str, cells) -> None:
        self.tokens = []
        pos, text = 0, text.lstrip("=")
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            assert m, f"cannot read formula at {text[pos:]!r}"
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0
        self.cells = cells

    def value(self):
        result = self.compare()
        assert self.i == len(self.tokens)
        return result

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, op=None):
        tok = self.tokens[self.i]
        if op is not None:
            assert tok == ("op", op), (tok, op)
        self.i += 1
        return tok

    def compare(self):
        left = self.additive()
        kind, op = self.peek()
        if kind == "op" and op in ("=", "<", ">", "<=", ">=", "<>"):
            self.take()
            right = self.additive()
            if op == "=":
                return (left or "") == (right or "") if isinstance(right, str) else left == right
            if isinstance(left, str) or isinstance(right, str) or left is None or right is None:
                raise TypeError("comparison of text")
            return {"<": left < right, ">": left > right, "<=": left <= right,
                    ">=": left >= right, "<>": left != right}[op]
        return left

    def additive(self):
        left = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            right = self.term()
            left = left + right if op == "+" else left - right
        return left

    def term(self):
        left = self.unary()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            right = self.unary()
            left = left * right if op == "*" else left / right
        return left

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            return -self.unary()
        return self.atom()

    def args(self):
        out = [self.lazy()]
        while self.peek() == ("op", ","):
            self.take()
            out.append(self.lazy())
        self.take(")")
        return out

    def lazy(self):
        """Skip one argument, returning its token range (evaluated only if needed)."""
        start, depth = self.i, 0
        while True:
            kind, tok = self.peek()
            if kind == "fn" or tok == "(":
                depth += 1
            elif tok == ")":
                if depth == 0:
                    break
                depth -= 1
            elif tok == "," and depth == 0:
                break
            self.i += 1
        return (start, self.i)

    def run(self, span):
        saved = self.i
        sub = Formula.__new__(Formula)
        sub.tokens, sub.i, sub.cells = self.tokens[span[0]:span[1]], 0, self.cells
        result = sub.value()
        self.i = saved
        return result

    def atom(self):
        kind, tok = self.take()
        if kind == "num":
            return Decimal(tok)
        if kind == "str":
            return tok[1:-1].replace('""', '"')
        if kind == "ref":
            v = self.cells[tok].value
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return Decimal(str(v))
            return v
        if tok == "(":
            v = self.compare()
            self.take(")")
            return v
        args = self.args()
        if tok == "IF":
            return self.run(args[1]) if self.run(args[0]) else self.run(args[2])
        if tok == "OR":
            return any(self.run(a) for a in args)
        if tok == "NOT":
            return not self.run(args[0])
        if tok == "ISNUMBER":
            return isinstance(self.run(args[0]), Decimal)
        raise AssertionError(f"function {tok} not supported")


def _label(result) -> str:
    from reports.document_data import capaian_label

    return capaian_label(result)


# --------------------------------------------------------------------- tests
async def test_compiled_documents_show_the_data_and_the_signer(walk, clock, tmp_path):
    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    assert doc.version == 1 and doc.status == DocumentStatus.DRAFT and doc.source == "compiled"
    text = flat(pdf_text(await stored_bytes(walk, doc.pdf_file_id)))
    assert "PENGUKURAN KINERJA" in text
    assert "Triwulan III Tahun 2024" in text
    for name in ("Tingkat Pengangguran Terbuka", "Predikat SAKIP Dinas", "Jumlah IKM yang dibina"):
        assert name in text, name
    kadis = await walk.who(Role.KADIS)
    assert kadis.name in text and kadis.nip in text
    assert "DATA CONTOH" in text

    # every capaian in the workbook, recomputed from its target and realisation cells,
    # equals reports.measure.capaian for the example data
    path = tmp_path / "v1.xlsx"
    path.write_bytes(await stored_bytes(walk, doc.workbook_file_id))
    ws = load_workbook(path)["Pengukuran Kinerja"]
    header = next(r for r in ws.iter_rows() if any(c.value == "Kode" for c in r))
    col = {str(c.value).split()[0]: c.column for c in header if c.value}
    async with walk.sm() as s:
        inds = {i.code: i for i in (await s.execute(select(Indicator))).scalars()}
        items = {i.indicator_id: i for i in (await s.execute(select(CycleIndicator))).scalars()}
    seen = set()
    for row in ws.iter_rows(min_row=header[0].row + 1):
        code = row[col["Kode"] - 1].value
        if code not in inds:
            continue
        ind, item = inds[code], items[inds[code].id]
        seen.add(code)
        cap_cell = row[col["%"] - 1] if "%" in col else row[7]
        expected = capaian(item.target_text if ind.value_type == ValueType.TEXT else item.target,
                           VALUES[code], polarity=ind.polarity,
                           lower_formula=ind.lower_formula, value_type=ind.value_type)
        target_cell, real_cell = row[5], row[6]
        if ind.value_type == ValueType.TEXT:
            assert target_cell.value == item.target_text and real_cell.value == VALUES[code]
            assert cap_cell.value == _label(expected)
            continue
        got = Formula(cap_cell.value, ws).value()
        if expected.percent is None:
            assert got == _label(expected), code
        else:
            assert isinstance(got, Decimal), (code, got)
            assert abs(got - expected.percent) < Decimal("1e-9"), (code, got, expected.percent)
    assert seen == set(VALUES)
    # both polarities, the text indicator and a missing value are among them
    assert inds["PPTK-01"].polarity == Polarity.LOWER and inds["HIJS-04"].polarity == Polarity.LOWER
    assert VALUES["SEK-05"] is None and inds["SEK-01"].value_type == ValueType.TEXT


async def numbered_final(walk, clock):
    """The example cycle compiled, initialled, signed and numbered (step 9) three
    minutes after the signature: (cycle id, the signed version, letter, the final
    version, Kasubag, staf)."""
    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run9_id = await sign_off(walk, cycle_id, run6_id, doc.id)
    clock.advance(minutes=3)

    async def number(wf: Workflow, s):
        letter = await wf.assign_number(staf, run9_id)
        final = await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)
        return letter, final

    letter, final = await walk(number)
    return cycle_id, doc, letter, final, kasubag, staf


async def test_numbering_stamps_the_final_pdf_and_the_archive_matches_its_manifest(
        walk, clock, tmp_path, services):
    cycle_id, doc, letter, final, kasubag, staf = await numbered_final(walk, clock)
    assert letter.number == "050/1/II.08/2024"
    assert final.status == DocumentStatus.NUMBERED and final.verification_code
    pdf = await stored_bytes(walk, final.pdf_file_id)
    text = flat(pdf_text(pdf))
    assert letter.number in text and final.verification_code in text
    kadis = await walk.who(Role.KADIS)
    assert kadis.name in text and kadis.nip in text

    # the QR code decodes to the verification code (when a decoder is installed)
    try:
        import zxingcpp
    except ImportError:
        zxingcpp = None
    if zxingcpp is not None:
        decoded = []
        for page in PdfReader(io.BytesIO(pdf)).pages:
            for image in page.images:
                decoded += [r.text for r in zxingcpp.read_barcodes(image.image)]
        assert final.verification_code in decoded

    async with walk.sm() as s:
        found = await verify_code(s, final.verification_code.lower())
        assert found["letter_number"] == letter.number
        assert found["sha256"] == hashlib.sha256(pdf).hexdigest()
        assert await verify_code(s, "ZZZZ-ZZZZ") is None

    # step 10 and 11: archive, then receipts (the contact confirms, two by photo)
    run10 = await open_run(walk, cycle_id, 10)
    clock.advance(minutes=5)
    await walk(lambda wf, s: wf.archive(kasubag, run10.id))
    async with walk.sm() as s:
        deliveries = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    contact = await walk.who(Role.CONTACT)
    await walk(lambda wf, s: wf.send_delivery(staf, deliveries[0].id))
    await walk(lambda wf, s: archive_service.record_receipt(wf, contact, deliveries[0].id))
    for d in deliveries[1:]:
        async def by_photo(wf, s, d=d):
            photo = await wf.sv.store.put(s, b"\xff\xd8foto tanda terima " + d.agency_key.encode(),
                                          "tanda-terima.jpg", "image/jpeg")
            return await archive_service.record_receipt(
                wf, staf, d.id, received_by="Petugas Loket", receipt_file_id=photo.id)
        await walk(by_photo)
    receipts = []
    async with walk.sm() as s:
        for d in (await s.execute(select(Delivery).order_by(Delivery.id))).scalars():
            receipt = await archive_service.receipt_document(s, d.id)
            assert receipt is not None
            receipts.append(flat(pdf_text(services.store.read(receipt))))
    assert "TANDA TERIMA" in receipts[0] and letter.number in receipts[0]
    assert "Bappeda Kabupaten Lampung Barat" in receipts[0]
    assert "Contoh Petugas Bappeda" in receipts[0] and "DATA CONTOH" in receipts[0]
    assert "Petugas Loket" in receipts[1]

    out = tmp_path / "arsip.zip"
    async with walk.sm() as s:
        result = await archive_service.build_archive(s, services.store, cycle_id, out)
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        manifest = z.read("MANIFEST.txt").decode()
        assert hashlib.sha256(z.read("MANIFEST.txt")).hexdigest() == result.manifest_sha256
        listed = {}
        for line in manifest.splitlines():
            if line and not line.startswith("#"):
                sha, size, name = line.split("  ", 2)
                listed[name] = (sha, int(size))
        assert set(listed) == names - {"MANIFEST.txt"}
        for name, (sha, size) in listed.items():
            data = z.read(name)
            assert hashlib.sha256(data).hexdigest() == sha and len(data) == size, name
        # every version's three files
        for v in (1, 2):
            assert any(n.startswith(f"dokumen/v{v}/") and n.endswith(".pdf") for n in names)
            assert any(n.startswith(f"dokumen/v{v}/") and n.endswith(".xlsx") for n in names)
            assert any(n.startswith(f"dokumen/v{v}/") and n.endswith(".png") for n in names)
        assert sum(n.startswith("tanda-terima/") for n in names) == 5  # 3 PDFs + 2 photos
        evidence = [n for n in names if n.startswith("bukti/")]
        assert len(evidence) == 1 and "/PPTK-01/" in evidence[0]
        assert z.read(evidence[0]) == EVIDENCE["PPTK-01"]
        approvals = list(csv.DictReader(io.StringIO(z.read("approvals.csv").decode())))
        assert [a["aksi"] for a in approvals] == ["paraf", "tanda tangan"]
        assert approvals[1]["nama"] == kadis.name and approvals[1]["sha256_pdf"] == doc.sha256
        # the approved hash is the sha256 of the signed version's PDF file in the archive
        assert hashlib.sha256(z.read(approvals[1]["berkas_pdf"])).hexdigest() == doc.sha256
        assert approvals[1]["waktu"].endswith("WIB")
        agenda = list(csv.DictReader(io.StringIO(z.read("agenda.csv").decode())))
        assert [a["nomor_surat"] for a in agenda] == [letter.number]
        audit = [json.loads(line)
                 for line in z.read("audit.jsonl").decode().splitlines()]
        actions = [a["action"] for a in audit]
        assert actions[0] == "cycle.start" and "cycle.close" in actions
        assert actions.count("delivery.receipt_document") == 3
        assert all(b["prev_hash"] == a["hash"] for a, b in zip(audit, audit[1:])
                   if b["id"] == a["id"] + 1)
        assert all(len(a["hash"]) == 64 for a in audit)


async def test_agenda_export_lists_the_numbers_of_the_year(walk, tmp_path):
    async def alloc(wf, s, on, subject):
        office = await wf.office()
        staf = await person(s, Role.STAF, "SEK")
        return await wf.allocate_number(office.id, on, subject=subject, recipient="Bappeda",
                                        person_id=staf.id)

    await walk(lambda wf, s: alloc(wf, s, date(2024, 10, 8), "Pengukuran Kinerja TW III"))
    await walk(lambda wf, s: alloc(wf, s, date(2024, 12, 30), "Laporan lain"))
    await walk(lambda wf, s: alloc(wf, s, date(2025, 1, 3), "Tahun berikutnya"))
    out = tmp_path / "agenda.xlsx"
    async with walk.sm() as s:
        count = await archive_service.export_agenda(s, out, year=2024)
    assert count == 2
    ws = load_workbook(out).active
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    head = next(i for i, r in enumerate(rows) if r[0] == "No urut")
    assert rows[head] == ["No urut", "Nomor surat", "Tanggal", "Perihal", "Tujuan",
                          "Dicatat oleh"]
    body = [r for r in rows[head + 1:] if r[0] is not None]
    assert [r[0] for r in body] == [1, 2]
    # the date is stored as a date, shown the Indonesian way; the book prints fitted to
    # the page width
    assert body[0][1] == "050/1/II.08/2024" and body[0][2] == datetime(2024, 10, 8)
    assert ws.cell(head + 2, 3).number_format == "[$-421]d mmmm yyyy"
    assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert body[0][3] == "Pengukuran Kinerja TW III" and body[0][4] == "Bappeda"
    assert body[0][5] == "Contoh Staf Sekretariat"


def test_the_command_line_exports_the_agenda_archives_a_cycle_and_verifies_a_code(
        tmp_path, db_url, capsys):
    import asyncio

    from bot.cli import main
    from bot.core.clock import ManualClock
    from bot.config import load_config
    from bot.devtools.example_data import example_office
    from bot.core.office_data import apply_office
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker
    from tests.conftest import wib
    from tests.test_cli import _reset

    _reset(db_url)
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
    assert main(["--config", str(cfg_file), "db", "upgrade"]) == 0
    services = build_services(load_config(cfg_file), ManualClock(wib(2024, 10, 7, 8, 0)))

    async def cycle_to_number():
        engine = make_engine(db_url)
        try:
            sm = make_sessionmaker(engine)
            async with sm() as s, s.begin():
                await apply_office(s, example_office(2024))
            walk = Walk(sm, services, services.clock)
            cycle_id, run6_id = await drive_to_compile(walk)
            kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")

            async def compile_(wf, s):
                return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

            doc = await walk(compile_)
            run9_id = await sign_off(walk, cycle_id, run6_id, doc.id)

            async def number(wf, s):
                letter = await wf.assign_number(staf, run9_id)
                final = await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)
                return letter.number, final.verification_code

            return (cycle_id, *await walk(number))
        finally:
            await engine.dispose()

    cycle_id, number, code = asyncio.run(cycle_to_number())
    capsys.readouterr()
    agenda = tmp_path / "agenda.xlsx"
    assert main(["--config", str(cfg_file), "agenda", "export", str(agenda), "--year", "2024"]) == 0
    rows = [[c.value for c in r] for r in load_workbook(agenda).active.iter_rows()]
    assert any(r[:2] == [1, number] for r in rows)
    out_zip = tmp_path / "arsip.zip"
    capsys.readouterr()
    assert main(["--config", str(cfg_file), "archive", str(cycle_id), str(out_zip)]) == 0
    printed = capsys.readouterr().out
    with zipfile.ZipFile(out_zip) as z:
        digest = hashlib.sha256(z.read("MANIFEST.txt")).hexdigest()
    assert f"SHA-256 MANIFEST.txt: {digest}" in printed
    assert main(["--config", str(cfg_file), "archive", "999", str(tmp_path / "x.zip")]) == 1
    assert main(["--config", str(cfg_file), "verify", code]) == 0
    printed = capsys.readouterr().out
    assert "ASLI" in printed and number in printed and "Drs. Contoh Kepala Dinas" in printed
    assert "WIB" in printed
    assert main(["--config", str(cfg_file), "verify", "ZZZZ-ZZZZ"]) == 1
    assert "TIDAK DITEMUKAN" in capsys.readouterr().err

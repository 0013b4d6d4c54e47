"""Spreadsheet and CSV injection: what people type never becomes a formula in a file the
bot produces (issue 11, point 6).

A whole cycle is played over the emulator (the script of ``sopbot demo``) with hostile
text typed by people: a text indicator's value, a note, the Sekretaris's return reason,
a receipt's receiver; and hostile names from the set-up data (office, bidang,
indicator, people, agency). Then every workbook version, the agenda book and the
archive's CSV files are opened: the only formulas are the workbook's own capaian,
kategori, bidang-sheet and chart formulas, and no CSV field starts a formula.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile

from openpyxl import load_workbook
from sqlalchemy import func, select, update

import bot.devtools.scenario as scenario
from bot.core.archive import build_archive, export_agenda
from bot.core.audit import verify
from bot.devtools.scenario import Player, ScriptedCycle, has_button
from models import Approval, Delivery, Document, Indicator, Office, Person, StoredFile, Unit
from models.enums import ApprovalAction, Role
from reports.cells import CSV_TRIGGERS, csv_text
from reports.workbook import CHART_SHEET, OFFICE_SHEET, STEPS_SHEET, SUMMARY_SHEET
from tests.e2e import harness  # noqa: F401  (fixture)
from tests.test_documents_service import flat, pdf_text

HYPERLINK = '=HYPERLINK("http://x","y")'
VALUE = HYPERLINK                                # the text indicator SEK-01, typed by the Kabid
NOTE = "=1+1"                                    # a note on PPTK-01, typed by the Kabid
PARAF_RETURN = "@SUM(A1) tabel belum lengkap"    # the Sekretaris returns the documents
RECEIVED_BY = "-2+3 Petugas Tata Usaha"          # a receipt photo's caption
NAMES = {                                        # from the set-up workbook
    "office": "=1+1 Dinas Tenaga Kerja dan Perindustrian",
    "unit SEK": "-2+3 Sekretariat",
    "indicator SEK-02": "@SUM(A1) Persentase dokumen perencanaan tepat waktu",
    "sekretaris": HYPERLINK,
    "staf SEK": "+1 Staf Umum & Kepegawaian",
    "kadis": "\tDrs. Kepala Dinas \U0001F600",
    "agency": "=Bappeda Kabupaten Lampung Barat",
}
TYPED = [VALUE, NOTE, PARAF_RETURN, RECEIVED_BY, *NAMES.values()]
FRAGMENTS = ("HYPERLINK", "1+1", "SUM(", "2+3")  # never part of a formula


class HostileCycle(ScriptedCycle):
    """The demo's cycle, with one return at the paraf (step 7) typed by the Sekretaris."""

    async def _simple(self, user, step_no, prefix, wait, *, slow=False):
        if step_no == 7 and not await self._returned_at_paraf():
            await self._return_at_paraf(user)
        await super()._simple(user, step_no, prefix, wait, slow=slow)

    async def _returned_at_paraf(self) -> bool:
        return await self.scalar(select(func.count(Approval.id)).where(
            Approval.action == ApprovalAction.RETURN)) > 0

    async def _return_at_paraf(self, sek) -> None:
        run = await self.latest_run(7)
        card = await self.card(sek, f"prf:{run.id}", run.id)
        q = await sek.press(card, text="Kembalikan")
        ask = await self.player.wait(sek, after=q, text_contains="alasan pengembalian")
        sent = await sek.reply_to(ask, PARAF_RETURN)
        await self.player.wait(sek, after=sent, text_contains="dikembalikan kepada")
        kasubag, _ = await self.user(Role.KASUBAG)
        run6 = await self.latest_run(6)  # step 6 again: a new version, submitted
        card = await self.card(kasubag, f"cmp:{run6.id}", run6.id)
        q = await self.press(kasubag, card, prefix="cmp:")
        ready = await self.player.wait(kasubag, after=q, predicate=has_button("subm:"),
                                       timeout=self.player.slow_wait)
        q = await self.press(kasubag, ready, prefix="subm:")
        await self.player.wait(kasubag, after=q, text_contains="diajukan kepada")


def own_formula(sheet: str, column: str, formula: str, bidang_sheets: set[str]) -> bool:
    """The workbook's own formulas: capaian (H, and P of the quarter's own figures) and
    kategori (I) on the office sheet, the bidang sheets' references to it (F-J), the
    chart sheet's averages (B, D), the summary's counts and averages (B-D)."""
    if sheet == OFFICE_SHEET:
        return column in "HIP" and formula.startswith("=IF(")
    if sheet == SUMMARY_SHEET:
        return column in "BCD" and f"'{OFFICE_SHEET}'!" in formula
    if sheet in bidang_sheets:
        return column in "FGHIJ" and formula.startswith(f"=IF('{OFFICE_SHEET}'!")
    if sheet == CHART_SHEET:
        return (column == "B" and formula.startswith("=IFERROR(AVERAGE(")) or (
            column == "D" and formula.startswith("=COUNT("))
    return False


def check_workbook(data: bytes, name: str) -> tuple[int, list[str]]:
    """No formula from people: returns (own formulas seen, every text cell)."""
    wb = load_workbook(io.BytesIO(data))
    bidang_sheets = set(wb.sheetnames) - {OFFICE_SHEET, SUMMARY_SHEET, CHART_SHEET, STEPS_SHEET,
                                          "_meta"}
    own, texts = 0, []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if cell.data_type == "f" or (isinstance(value, str) and value.startswith("=")
                                             and cell.data_type != "s"):
                    assert own_formula(ws.title, cell.column_letter, str(value), bidang_sheets), \
                        f"{name} {ws.title}!{cell.coordinate}: formula {value!r}"
                    assert not any(f in str(value) for f in FRAGMENTS), (name, cell.coordinate)
                    own += 1
                elif isinstance(value, str):
                    texts.append(value)
    return own, texts


def missing(texts: list[str], *wanted: str) -> list[str]:
    return [w for w in wanted if not any(w in text for text in texts)]


def check_csv(data: bytes, name: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    for row in rows:
        for field, value in row.items():
            assert not value.startswith(CSV_TRIGGERS), f"{name} {field}: {value!r}"
    return rows


async def test_formulas_typed_by_people_stay_text_in_every_file(
        harness, sessionmaker, services, config, clock, monkeypatch, tmp_path):
    # hostile names in the set-up data
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Office).values(name=NAMES["office"]))
        await s.execute(update(Unit).where(Unit.code == "SEK").values(name=NAMES["unit SEK"]))
        await s.execute(update(Indicator).where(Indicator.code == "SEK-02")
                        .values(name=NAMES["indicator SEK-02"]))
        sek_unit = (await s.execute(select(Unit.id).where(Unit.code == "SEK"))).scalar_one()
        for role, unit, key in ((Role.SEKRETARIS, None, "sekretaris"),
                                (Role.STAF, sek_unit, "staf SEK"),
                                (Role.KADIS, None, "kadis")):
            stmt = update(Person).where(Person.role == role, Person.active.is_(True))
            if unit is not None:
                stmt = stmt.where(Person.unit_id == unit)
            await s.execute(stmt.values(name=NAMES[key]))
    config.delivery.agencies[0].name = NAMES["agency"]
    # hostile text typed by people during the cycle
    answers = dict(scenario.ANSWERS)
    answers["SEK"] = [("SEK-01", VALUE), *scenario.ANSWERS["SEK"][1:]]
    monkeypatch.setattr(scenario, "ANSWERS", answers)
    monkeypatch.setattr(scenario, "NOTES", {"PPTK-01": NOTE})
    monkeypatch.setattr(scenario, "RECEIVED_BY", RECEIVED_BY)

    await harness.register_all()
    script = HostileCycle(sessionmaker, harness.users, Player(clock),
                          period="Triwulan III Tahun 2024")
    cycle_id = await script.run()
    assert await script.cycle_closed()
    await harness.settle()

    async with sessionmaker() as s:
        assert (await script.saved("SEK-01")) == VALUE
        received = (await s.execute(select(Delivery.received_by))).scalars().all()
        assert RECEIVED_BY in received
        docs = (await s.execute(select(Document).where(Document.cycle_id == cycle_id)
                                .order_by(Document.version))).scalars().all()
        workbooks = {f"v{d.version}": services.store.read(await s.get(StoredFile,
                                                                      d.workbook_file_id))
                     for d in docs}
        final_pdf = services.store.read(await s.get(StoredFile, docs[-1].pdf_file_id))
        archive = await build_archive(s, services.store, cycle_id, tmp_path / "arsip.zip")
        await export_agenda(s, tmp_path / "agenda.xlsx")
    assert len(workbooks) >= 3  # compiled, recompiled after the return, final

    # every workbook version: the typed text is there, as text; the only formulas are own
    for name, data in workbooks.items():
        own, texts = check_workbook(data, name)
        assert own > 0
        assert not missing(texts, VALUE, NOTE, NAMES["office"].upper(), NAMES["unit SEK"],
                           NAMES["indicator SEK-02"]), name
    assert not missing(check_workbook(workbooks[f"v{len(workbooks)}"], "final")[1],
                       NAMES["sekretaris"], NAMES["staf SEK"],  # step holders
                       NAMES["kadis"])  # the signature block
    own, texts = check_workbook((tmp_path / "agenda.xlsx").read_bytes(), "agenda")
    assert own == 0 and not missing(texts, NAMES["office"], NAMES["staf SEK"], NAMES["agency"])

    # the archive: its CSV files start no formula; text keeps its content after a quote
    with zipfile.ZipFile(archive.path) as z:
        approvals = check_csv(z.read("approvals.csv"), "approvals.csv")
        agenda = check_csv(z.read("agenda.csv"), "agenda.csv")
        for name in z.namelist():
            if name.endswith(".xlsx"):
                assert check_workbook(z.read(name), name)[0] > 0
        manifest = z.read("MANIFEST.txt").decode()
    assert {r["alasan"] for r in approvals} >= {csv_text(PARAF_RETURN)}
    assert {csv_text(NAMES["sekretaris"]), "'" + NAMES["kadis"]} <= {r["nama"] for r in approvals}
    assert [r["no_urut"] for r in agenda] == ["1"]  # a number stays a number
    assert agenda[0]["dicatat_oleh"] == "'" + NAMES["staf SEK"]
    assert agenda[0]["tujuan"].startswith("'" + NAMES["agency"])

    # the final PDF and the manifest carry the head of the audit trail, still in the chain
    pdf_head = re.search(r"Kepala jejak audit saat dokumen ini dibuat: ([0-9a-f]{64})",
                         flat(pdf_text(final_pdf))).group(1)
    manifest_head = re.search(r"Kepala jejak audit: ([0-9a-f]{64})", manifest).group(1)
    async with sessionmaker() as s:
        for head in (pdf_head, manifest_head):
            result = await verify(s, expect_head=head)
            assert result.ok and result.expected_at is not None, result.problems


def test_csv_and_cell_helpers_neutralise_only_text_that_starts_a_formula():
    from openpyxl import Workbook

    from reports.cells import append_text_row, formula_cell, text_cell

    for typed in ('=HYPERLINK("http://x","y")', "=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1",
                  "\r=1"):
        assert csv_text(typed) == "'" + typed
    for kept in (7, -5, "050/1/KPTS/II.08/2024", "Sakernas <Agustus> & \"2024\" 😀", "",
                 None, "a=1", " =1"):
        assert csv_text(kept) == kept
    ws = Workbook().active
    assert text_cell(ws, 1, 1, "=1+1").data_type == "s"
    assert text_cell(ws, 1, 2, 12.5).data_type == "n"
    assert formula_cell(ws, 1, 3, "=SUM(B1:B1)").data_type == "f"
    row = append_text_row(ws, [1, "@SUM(A1)", "=1+1", None])
    assert [c.data_type for c in ws[row][:3]] == ["n", "s", "s"] and ws.cell(row, 3).value == "=1+1"

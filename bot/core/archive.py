"""What a cycle leaves behind as the office's records (SOP "Pencatatan"): the tanda
terima of each delivery (step 11), the agenda book (buku agenda, step 9) and the
archive bundle of a cycle (step 10, ``sopbot archive``).

The archive is a zip with every document version's files (by version folder), the
evidence (by bidang and indicator), the incoming letter, the receipts, the approvals,
the cycle's audit rows with their hashes, its agenda row(s), ``kepatuhan-sop.csv`` (every
step's state and time when the archive is made: the final PDF is numbered and signed
before steps 10-11, so this is where their record is) and ``MANIFEST.txt`` that lists
every file with its sha256 and size.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.outbox import enqueue
from bot.core.storage import FileStore, private_opener
from bot.texts import period_label, role_title, t
from bot.core.workcal import to_wib
from bot.core.workflow import Workflow
from models import (
    Approval, AuditLog, Cycle, Delivery, Document, Evidence, Indicator, LetterNumber,
    Office, Person, StoredFile, Submission, Unit,
)
from models.enums import ApprovalAction
from reports.cells import append_text_row, csv_text
from reports.numbers import zone_label
from reports.receipt import ReceiptData, build_receipt_pdf

RECEIPT_DOCUMENT = "delivery.receipt_document"  # audit action naming the tanda terima PDF
ACTION_LABELS = {ApprovalAction.PARAF: "paraf", ApprovalAction.SIGN: "tanda tangan",
                 ApprovalAction.RETURN: "dikembalikan"}
#: "8 Oktober 2024" in Excel and LibreOffice ([$-421]: Indonesian month names).
AGENDA_DATE_FORMAT = "[$-421]d mmmm yyyy"
AGENDA_HEADERS = ("No urut", "Nomor surat", "Tanggal", "Perihal", "Tujuan", "Dicatat oleh")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def wib_text(moment: datetime | None) -> str:
    """"2024-10-07 08:30:00 WIB" (sortable, for CSV files and the command line)."""
    if moment is None:
        return ""
    local = to_wib(moment)
    return f"{local:%Y-%m-%d %H:%M:%S} {zone_label(local)}"


def safe_name(text: str, limit: int = 80) -> str:
    """A file or folder name from free text: letters, digits, dot, dash, underscore."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "berkas"
    return name[:limit]


# ------------------------------------------------------------------ receipts
async def receipt_data(wf: Workflow, delivery: Delivery) -> ReceiptData:
    cycle = await wf.get_cycle(delivery.cycle_id)
    office = await wf.office()
    letter = await wf.letter_of(cycle.id)
    recorder = await wf.s.get(Person, delivery.recorded_by_id) if delivery.recorded_by_id else None
    by_contact = (delivery.contact_person_id is not None
                  and delivery.receipt_file_id is None)
    doc = await wf.current_document(cycle.id)
    documents = []
    for fid in ((doc.pdf_file_id, doc.workbook_file_id) if doc else ()):
        stored = await wf.s.get(StoredFile, fid) if fid else None
        if stored is not None:
            documents.append(stored.filename or "dokumen")
    return ReceiptData(
        office_name=office.name, regency=office.regency, place=office.place,
        letter_number=letter.number if letter else "-",
        letter_date=letter.letter_date if letter else None,
        subject=(letter.subject if letter and letter.subject
                 else f"{cycle.document_type} {period_label(cycle.kind, cycle.year, cycle.quarter)}"),
        agency=delivery.agency_name, received_by=delivery.received_by,
        received_at=to_wib(delivery.received_at or wf.now),
        method=t("g.receipt_by_contact") if by_contact else t("g.receipt_by_photo"),
        delivered_by=recorder.name if recorder else "",
        documents=tuple(documents), example_data=office.example_data,
        receipt_no=f"{delivery.cycle_id}-{delivery.id}")


async def record_receipt(wf: Workflow, actor: Person, delivery_id: int, *,
                         received_by: str = "", receipt_file_id: int | None = None
                         ) -> tuple[Delivery, StoredFile]:
    """``Workflow.record_receipt`` plus the tanda terima PDF: stored, named in the audit
    trail and sent to the holder of the delivery step, in the same transaction."""
    delivery = await wf.record_receipt(actor, delivery_id, received_by=received_by,
                                       receipt_file_id=receipt_file_id)
    data = await receipt_data(wf, delivery)
    pdf = build_receipt_pdf(data)
    name = f"Tanda-Terima-{safe_name(delivery.agency_key)}-{delivery.cycle_id}.pdf"
    stored = await wf.sv.store.put(wf.s, pdf, name, "application/pdf")
    await audit.record(wf.s, RECEIPT_DOCUMENT, actor_id=actor.id, cycle_id=delivery.cycle_id,
                       at=wf.now, delivery=delivery.id, agency=delivery.agency_key,
                       file=stored.id, sha256=stored.sha256)
    holder = await wf.s.get(Person, delivery.recorded_by_id) if delivery.recorded_by_id else None
    if holder is not None and holder.id != actor.id:  # the recorder gets it as the answer
        # one message: the document with its caption (bot/telegram/outbox_sender.py)
        await enqueue(wf.s, holder, "receipt_document",
                      t("g.receipt_document", agency=delivery.agency_name,
                        received_by=delivery.received_by),
                      at=wf.now, files=[{"file_id": stored.id, "kind": "document"}])
    return delivery, stored


async def receipt_document(session: AsyncSession, delivery_id: int) -> StoredFile | None:
    """The tanda terima PDF made for a delivery (the latest, if made twice)."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    rows = (await session.execute(
        select(AuditLog.payload).where(AuditLog.action == RECEIPT_DOCUMENT,
                                       AuditLog.cycle_id == delivery.cycle_id)
        .order_by(AuditLog.id.desc()))).scalars()
    for payload in rows:
        data = json.loads(payload)
        if data.get("delivery") == delivery_id:
            return await session.get(StoredFile, data["file"])
    return None


# ------------------------------------------------------------------ agenda book
@dataclass(frozen=True)
class AgendaRow:
    sequence: int
    number: str
    letter_date: date
    subject: str
    recipient: str
    recorded_by: str


async def agenda_rows(session: AsyncSession, *, year: int | None = None,
                      cycle_id: int | None = None,
                      office_id: int | None = None) -> list[AgendaRow]:
    """The agenda book's entries: of one office (``office_id``) or one cycle."""
    stmt = (select(LetterNumber, Person)
            .outerjoin(Person, Person.id == LetterNumber.person_id)
            .order_by(LetterNumber.office_id, LetterNumber.year, LetterNumber.sequence))
    if year is not None:
        stmt = stmt.where(LetterNumber.year == year)
    if cycle_id is not None:
        stmt = stmt.where(LetterNumber.cycle_id == cycle_id)
    if office_id is not None:
        stmt = stmt.where(LetterNumber.office_id == office_id)
    return [AgendaRow(letter.sequence, letter.number, letter.letter_date, letter.subject,
                      letter.recipient, person.name if person else "")
            for letter, person in (await session.execute(stmt)).all()]


async def office_by_code(session: AsyncSession, unit_code: str | None) -> Office | None:
    """The office of that unit code; without a code, the only office (None when there
    is none). Several offices and no code: ``LookupError`` naming the codes."""
    if unit_code:
        office = (await session.execute(select(Office).where(
            Office.unit_code == unit_code.strip()))).scalars().first()
        if office is None:
            raise LookupError(f"Kantor dengan kode unit {unit_code} tidak ditemukan.")
        return office
    offices = (await session.execute(select(Office).order_by(Office.id))).scalars().all()
    if len(offices) > 1:
        raise LookupError("Ada lebih dari satu kantor; sebutkan --kantor KODE_UNIT: "
                          + ", ".join(o.unit_code for o in offices))
    return offices[0] if offices else None


async def export_agenda(session: AsyncSession, path: Path, *, year: int | None = None,
                        office: str | None = None) -> int:
    """Write one office's agenda book as .xlsx (``office``: its unit code, needed when
    there are several); returns the number of entries."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    office = await office_by_code(session, office)
    rows = await agenda_rows(session, year=year, office_id=office.id if office else -1)
    wb = Workbook()
    ws = wb.active
    ws.title = "Buku Agenda"
    ws.append([f"BUKU AGENDA SURAT KELUAR{f' TAHUN {year}' if year else ''}"])
    append_text_row(ws, [f"{office.name} {office.regency}".strip() if office else ""])
    if office is not None and office.example_data:
        ws.append(["DATA CONTOH"])
        ws["A3"].font = Font(bold=True, color="C00000")
    ws.append([])
    ws.append(list(AGENDA_HEADERS))
    head_row = ws.max_row
    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for cell in ws[head_row]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="D9E1F2")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = border
    ws["A1"].font = Font(bold=True, size=13)
    for row in rows:
        # the date is a date (sortable, filterable), shown the Indonesian way
        append_text_row(ws, [row.sequence, row.number, row.letter_date,
                             row.subject, row.recipient, row.recorded_by])
        for cell in ws[ws.max_row]:
            cell.border = border
            cell.alignment = Alignment(vertical="top", wrap_text=True)
        ws.cell(row=ws.max_row, column=3).number_format = AGENDA_DATE_FORMAT
    for letter, width in zip("ABCDEF", (9, 28, 18, 48, 48, 30)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = ws.cell(row=head_row + 1, column=1)
    ws.print_title_rows = f"{head_row}:{head_row}"
    # printed on A4 landscape, fitted to the width of the page, as many pages long as
    # it takes; the page number at the foot
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top, ws.page_margins.header = 0.85, 0.3
    ws.print_area = f"A1:F{ws.max_row}"
    ws.oddFooter.center.text = "Halaman &P dari &N"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", opener=private_opener) as fh:  # 0600
        wb.save(fh)
    return len(rows)


# ------------------------------------------------------------------ the bundle
@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    entries: tuple[ArchiveEntry, ...]
    manifest_sha256: str


class _Bundle:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, name: str, data: bytes) -> str:
        base, dot, ext = name.rpartition(".")
        if not dot:
            base, ext = name, ""
        candidate, n = name, 2
        while candidate in self.files:
            if self.files[candidate] == data:
                return candidate
            candidate = f"{base}-{n}.{ext}" if ext else f"{base}-{n}"
            n += 1
        self.files[candidate] = data
        return candidate


def _csv(header: list[str], rows: list[list[object]]) -> bytes:
    """A CSV file whose text fields cannot start a formula (``reports.cells.csv_text``:
    a leading =, +, -, @, tab or CR gets a single quote). The fields the office needs as
    numbers (no_urut, versi_dokumen) are passed as ints and stay numbers; dates, times,
    letter numbers and hashes are text and start with a digit anyway."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_text(value) for value in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def _signer_certificate(pdf: bytes) -> bytes | None:
    """The DER certificate of the PDF's last PAdES signature (its sha256 is the
    fingerprint named in MANIFEST.txt and by /cek)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        sigs = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
        return sigs[-1].signer_cert.dump() if sigs else None
    except Exception:  # a damaged file: the archive still lists it by its sha256
        return None


def _hash_words(docs, doc_files: dict[tuple[int, str], str],
                entries: tuple[ArchiveEntry, ...]) -> list[str]:
    """MANIFEST.txt in words: what each sha256 is of, and how the final relates to the
    version that was signed."""
    by_name = {e.name: e.sha256 for e in entries}
    lines = ["# Setiap sha256 di bawah ini dan di approvals.csv adalah sha256 sebuah berkas di "
             "arsip ini (sha256sum berkas itu).",
             "# approvals.csv: sha256_pdf dan sha256_workbook adalah berkas PDF dan workbook "
             "persis seperti yang diperlihatkan kepada yang memaraf/menandatangani "
             "(berkas_pdf, berkas_workbook)."]
    for doc in docs:
        if not doc.approved_sha256:
            continue
        final = doc_files.get((doc.version, "pdf"), "")
        approved = next((d for d in docs if d.sha256 == doc.approved_sha256), None)
        approved_name = doc_files.get((approved.version, "pdf"), "") if approved else ""
        lines.append(
            f"# Versi final bernomor v{doc.version}: {final} (sha256 {by_name.get(final, '-')}) "
            f"adalah berkas baru, dibuat dari versi yang ditandatangani v"
            f"{approved.version if approved else '?'}: {approved_name} (sha256 "
            f"{doc.approved_sha256}), dengan nomor surat, kode verifikasi dan kode QR; "
            + (f"tanda tangan elektronik: {doc.signature} (sidik jari = sha256 berkas "
               f"dokumen/v{doc.version}/sertifikat-penanda-tangan.der)." if doc.signature
               else "tanpa tanda tangan elektronik."))
    return lines


async def compliance_csv(session: AsyncSession, services, cycle: Cycle) -> bytes:
    """``kepatuhan-sop.csv``: every step of the cycle with its state now (steps 10 and 11
    and each agency's receipt included, which the final PDF, made at numbering, cannot
    show), and the SOP's total standard against the cycle's actual total."""
    from bot.core.documents import sop_record
    from reports.document_data import format_working_minutes

    now = services.clock.now()
    steps, comp = await sop_record(session, services.sop, services.calendar,
                                   services.day_minutes, cycle, now, "saat arsip dibuat")
    rows: list[list[object]] = []
    for st in steps:
        rows.append([st.number, st.name, st.unit, st.role_title, st.holder, wib_text(st.started),
                     wib_text(st.completed), st.standard_text,
                     st.standard_max_minutes if st.counted else "",
                     "" if st.actual_minutes is None else st.actual_minutes,
                     format_working_minutes(st.actual_minutes), st.status,
                     "ya" if st.counted else "tidak (waktu OPD)"])
    rows.append(["", "Total siklus", "", "", "", "", "", comp.standard_text,
                 comp.standard_minutes,
                 "" if comp.actual_minutes is None else comp.actual_minutes,
                 format_working_minutes(comp.actual_minutes), comp.verdict,
                 f"keadaan per {wib_text(now)}"])
    return _csv(["langkah", "kegiatan", "bidang", "pelaksana", "nama", "mulai", "selesai",
                 "standar", "standar_menit_kerja", "aktual_menit_kerja", "aktual", "status",
                 "dihitung"], rows)


async def build_archive(session: AsyncSession, store: FileStore, cycle_id: int,
                        out: Path, *, services=None) -> ArchiveResult:
    """Write the archive zip of one cycle to ``out``. With ``services`` (the SOP, the
    calendar and the clock) it holds ``kepatuhan-sop.csv``, the record of every step."""
    cycle = await session.get(Cycle, cycle_id)
    if cycle is None:
        raise LookupError(f"Siklus {cycle_id} tidak ditemukan.")
    from bot.core.workcal import use_office_zone

    if services is not None:  # the cycle's office: its SOP, calendar and time zone
        services = services.for_office(await session.get(Office, cycle.office_id))
        use_office_zone(services.calendar.tz)
    bundle = _Bundle()
    if services is not None:
        bundle.add("kepatuhan-sop.csv", await compliance_csv(session, services, cycle))

    async def stored(file_id: int | None) -> tuple[StoredFile, bytes] | None:
        if not file_id:
            return None
        row = await session.get(StoredFile, file_id)
        if row is None:
            return None
        return row, store.read(row)

    # document versions
    docs = (await session.execute(select(Document).where(Document.cycle_id == cycle_id)
                                  .order_by(Document.version))).scalars().all()
    doc_files: dict[tuple[int, str], str] = {}  # (version, kind) -> name in the zip
    for doc in docs:
        for kind, fid in (("pdf", doc.pdf_file_id), ("xlsx", doc.workbook_file_id),
                          ("png", doc.chart_file_id)):
            got = await stored(fid)
            if got is not None:
                row, data = got
                name = safe_name(row.filename or f"dokumen.{kind}")
                doc_files[(doc.version, kind)] = bundle.add(f"dokumen/v{doc.version}/{name}", data)
                if kind == "pdf" and doc.signature:  # the certificate that signed it
                    cert = _signer_certificate(data)
                    if cert is not None:
                        bundle.add(f"dokumen/v{doc.version}/sertifikat-penanda-tangan.der", cert)

    # evidence by bidang / indicator (every revision's files)
    units = {u.id: u for u in (await session.execute(select(Unit))).scalars()}
    evidence = (await session.execute(
        select(Evidence, Submission, Indicator)
        .join(Submission, Submission.id == Evidence.submission_id)
        .join(Indicator, Indicator.id == Submission.indicator_id)
        .where(Submission.cycle_id == cycle_id)
        .order_by(Indicator.unit_id, Indicator.sort_order, Submission.revision, Evidence.id)
    )).all()
    for ev, sub, ind in evidence:
        got = await stored(ev.file_id)
        if got is not None:
            row, data = got
            unit = units.get(ind.unit_id)
            folder = f"bukti/{safe_name(unit.name if unit else 'bidang')}/{safe_name(ind.code)}"
            bundle.add(f"{folder}/r{sub.revision}-{safe_name(row.filename or 'bukti')}", data)

    # the incoming letter
    got = await stored(cycle.letter_file_id)
    if got is not None:
        row, data = got
        bundle.add(f"surat-masuk/{safe_name(row.filename or 'surat-masuk')}", data)

    # receipts: the photo of the signed receipt and the tanda terima PDF
    deliveries = (await session.execute(select(Delivery).where(Delivery.cycle_id == cycle_id)
                                        .order_by(Delivery.id))).scalars().all()
    for d in deliveries:
        folder = f"tanda-terima/{safe_name(d.agency_key)}"
        got = await stored(d.receipt_file_id)
        if got is not None:
            row, data = got
            bundle.add(f"{folder}/foto-{safe_name(row.filename or 'tanda-terima.jpg')}", data)
        receipt = await receipt_document(session, d.id)
        if receipt is not None:
            bundle.add(f"{folder}/{safe_name(receipt.filename or 'tanda-terima.pdf')}",
                       store.read(receipt))

    # approvals
    versions = {d.id: d.version for d in docs}
    approvals = (await session.execute(
        select(Approval, Person).join(Person, Person.id == Approval.person_id)
        .where(Approval.document_id.in_(list(versions) or [-1])).order_by(Approval.id)
    )).all()
    # sha256_pdf / sha256_workbook: the files exactly as shown to the approver, i.e. the
    # version's files under dokumen/vN/ (named in berkas_pdf / berkas_workbook)
    rows_ = []
    for a, p in approvals:
        version = versions.get(a.document_id, "")
        rows_.append([p.name, role_title(p.role), a.capacity, ACTION_LABELS[a.action], a.reason,
                      wib_text(a.created_at), version, a.document_sha256,
                      doc_files.get((version, "pdf"), ""), a.workbook_sha256,
                      doc_files.get((version, "xlsx"), "") if a.workbook_sha256 else ""])
    bundle.add("approvals.csv", _csv(
        ["nama", "peran", "selaku", "aksi", "alasan", "waktu", "versi_dokumen", "sha256_pdf",
         "berkas_pdf", "sha256_workbook", "berkas_workbook"], rows_))

    # the cycle's audit rows with their hashes
    people = {p.id: p.name for p in (await session.execute(
        select(Person).where(Person.office_id == cycle.office_id))).scalars()}
    rows = (await session.execute(select(AuditLog).where(AuditLog.cycle_id == cycle_id)
                                  .order_by(AuditLog.id))).scalars().all()
    lines = [json.dumps({
        "id": r.id, "created_at": r.created_at.isoformat(), "waktu": wib_text(r.created_at),
        "actor_id": r.actor_id, "actor": people.get(r.actor_id, ""), "action": r.action,
        "payload": json.loads(r.payload), "prev_hash": r.prev_hash, "hash": r.hash,
    }, ensure_ascii=False, sort_keys=True) for r in rows]
    bundle.add("audit.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))

    # the agenda entry of the letter
    bundle.add("agenda.csv", _csv(
        ["no_urut", "nomor_surat", "tanggal", "perihal", "tujuan", "dicatat_oleh"],
        [[r.sequence, r.number, r.letter_date.isoformat(), r.subject, r.recipient,
          r.recorded_by] for r in await agenda_rows(session, cycle_id=cycle_id)]))

    entries = tuple(ArchiveEntry(name, hashlib.sha256(data).hexdigest(), len(data))
                    for name, data in sorted(bundle.files.items()))
    period = period_label(cycle.kind, cycle.year, cycle.quarter)
    head = await audit.current_head(session)  # proves a later rewrite of the trail
    manifest = "\n".join(
        [f"# Arsip siklus {cycle_id}: {cycle.document_type} {period}",
         f"# Kepala jejak audit: {head.line}; periksa: sopbot audit verify --expect-head "
         f"{head.hash}",
         *_hash_words(docs, doc_files, entries),
         "# sha256  ukuran(byte)  berkas", *(f"{e.sha256}  {e.size}  {e.name}" for e in entries)]
    ) + "\n"
    manifest_bytes = manifest.encode("utf-8")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb", opener=private_opener) as fh, \
            zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z:  # 0600
        for name, data in [*sorted(bundle.files.items()), ("MANIFEST.txt", manifest_bytes)]:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return ArchiveResult(out, entries, hashlib.sha256(manifest_bytes).hexdigest())

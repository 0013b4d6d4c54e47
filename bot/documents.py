"""From the database to the documents: fill ``DocumentData``, build the workbook, PDF
and chart, store them by sha256 and record the version (steps 5-6, and the stamped
copy after numbering, step 9)."""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import audit
from bot.texts import role_title
from bot.workflow import Workflow
from models import (
    Approval, Cycle, Document, Evidence, Indicator, LetterNumber, Person, StepRun, StoredFile,
    Unit,
)
from models.enums import ApprovalAction, Role, StepStatus, ValueType
from reports.document_data import DocumentData, IndicatorRow, Initial, Signatory, StepTiming
from reports.measure import CapPolicy

if TYPE_CHECKING:
    from reports.workbook import RowEdit

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_verification_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def indicator_rows(wf: Workflow, cycle: Cycle) -> list[IndicatorRow]:
    s = wf.s
    rows = []
    units = {u.id: u for u in (await s.execute(select(Unit))).scalars()}
    items = await wf.cycle_items(cycle.id)
    items.sort(key=lambda i: (units[i.unit_id].sort_order, i.position))
    for item in items:
        ind = await s.get(Indicator, item.indicator_id)
        sub = await wf.latest_submission(cycle.id, ind.id)
        if ind.value_type == ValueType.TEXT:
            target, real = item.target_text, (sub.value_text if sub and not sub.skipped else None)
        else:
            target, real = item.target, (sub.value if sub and not sub.skipped else None)
        evidence: tuple[str, ...] = ()
        note = ""
        if sub is not None:
            note = sub.note or ("Dilewati" if sub.skipped else "")
            files = (await s.execute(
                select(StoredFile.filename).join(Evidence, Evidence.file_id == StoredFile.id)
                .where(Evidence.submission_id == sub.id))).scalars().all()
            evidence = tuple(f or "bukti" for f in files)
        rows.append(IndicatorRow(
            bidang=units[item.unit_id].name, sasaran=ind.sasaran, code=ind.code, name=ind.name,
            definition=ind.definition, unit=ind.unit_of_measure, polarity=ind.polarity,
            lower_formula=ind.lower_formula, value_type=ind.value_type, target=target,
            realisasi=real, note=note, evidence=evidence))
    return rows


async def step_timings(wf: Workflow, cycle: Cycle) -> list[StepTiming]:
    s, cal = wf.s, wf.sv.calendar
    runs = await wf.runs_of(cycle.id)
    out = []
    for step in wf.sop.steps:
        step_runs = [r for r in runs if r.step_no == step.number and r.status != StepStatus.CANCELLED]
        if not step_runs:
            continue
        started = min(r.started_at for r in step_runs)
        done = [r.completed_at for r in step_runs if r.completed_at]
        still_open = any(r.status == StepStatus.OPEN for r in step_runs)
        completed = None if still_open or not done else max(done)
        actual = cal.working_minutes_between(started, completed) if completed else None
        holder = await s.get(Person, step_runs[-1].assignee_id) if step_runs[-1].assignee_id else None
        out.append(StepTiming(
            number=step.number, name=step.activity, role_title=role_title(step.role),
            holder=holder.name if holder else "-", standard_text=step.time.text,
            standard_max_minutes=step.time.max_minutes(wf.sv.day_minutes),
            actual_minutes=actual, started=started, completed=completed))
    return out


async def signatory(wf: Workflow, cycle: Cycle, signed_doc: Document | None) -> Signatory:
    s = wf.s
    approval = None
    if signed_doc is not None:
        approval = (await s.execute(select(Approval).where(
            Approval.document_id == signed_doc.id, Approval.action == ApprovalAction.SIGN))
        ).scalars().first()
    if approval is not None:
        person = await s.get(Person, approval.person_id)
        acting = approval.acting_as
    else:
        # not signed yet: whoever holds the Kadis' post now (a Plh./Plt. included)
        from bot.administration import covering

        appt = await covering(s, cycle.office_id, Role.KADIS, None, wf.now)
        if appt is not None:
            person, acting = await s.get(Person, appt.acting_person_id), appt.kind.label
        else:
            person = (await s.execute(select(Person).where(
                Person.role == Role.KADIS, Person.active.is_(True)).order_by(Person.id))
            ).scalars().first()
            acting = ""
    office = await wf.office()
    run = await s.get(StepRun, approval.step_run_id) if approval is not None else None
    role = run.role if run is not None else Role.KADIS  # the post signed for (own or acting)
    title = (f"Kepala {office.name}" if role == Role.KADIS
             else f"{role_title(role)} {office.name}")
    return Signatory(
        place=office.place,
        title=f"{title} {office.regency}".strip(),
        name=person.name if person else "", rank=person.rank if person else "",
        nip=(person.nip or "") if person else "", acting=acting,
        signed_at=approval.created_at.astimezone(wf.sv.calendar.tz) if approval else None)


async def approval_capacity(session, approval: Approval) -> str:
    """The capacity recorded with an approval ("Plh. Kepala Dinas"); for approvals
    recorded before it was kept, the run's role with the acting prefix."""
    if approval.capacity:
        return approval.capacity
    run = await session.get(StepRun, approval.step_run_id)
    title = role_title(run.role) if run is not None else ""
    return f"{approval.acting_as} {title}".strip()


async def initials(wf: Workflow, doc: Document | None) -> tuple[Initial, ...]:
    """The paraf given on this version: capacity, name and time of each."""
    if doc is None:
        return ()
    rows = (await wf.s.execute(
        select(Approval, Person).join(Person, Person.id == Approval.person_id)
        .where(Approval.document_id == doc.id, Approval.action == ApprovalAction.PARAF)
        .order_by(Approval.id))).all()
    return tuple([Initial(capacity=await approval_capacity(wf.s, a), name=p.name,
                          at=a.created_at.astimezone(wf.sv.calendar.tz)) for a, p in rows])


async def document_data(wf: Workflow, cycle: Cycle, *, version: int,
                        letter: LetterNumber | None = None, verification_code: str | None = None,
                        signed_doc: Document | None = None,
                        audit_head: str | None = None) -> DocumentData:
    office = await wf.office()
    opts = wf.sv.measurement_options()
    return DocumentData(
        office_name=office.name, regency=office.regency,
        title=f"PENGUKURAN KINERJA {office.name.upper()}",
        period_label=wf.period(cycle), year=cycle.year,
        rows=tuple(await indicator_rows(wf, cycle)),
        steps=tuple(await step_timings(wf, cycle)),
        signatory=await signatory(wf, cycle, signed_doc),
        initials=await initials(wf, signed_doc),
        letter_number=letter.number if letter else None,
        letter_date=letter.letter_date if letter else None,
        verification_code=verification_code,
        verification_url_or_text=(f"Cek keaslian: kirim /cek {verification_code} ke bot"
                                  if verification_code else None),
        cap=opts["cap"] if isinstance(opts["cap"], CapPolicy) else None,
        bands=opts["bands"], example_data=office.example_data, version=version,
        audit_head=audit_head)


def _build_files(data: DocumentData, folder: Path, stem: str) -> dict[str, Path]:
    from reports.chart import build_chart
    from reports.pdf import build_pdf
    from reports.workbook import build_workbook

    return {
        "workbook": build_workbook(data, folder / f"{stem}.xlsx"),
        "pdf": build_pdf(data, folder / f"{stem}.pdf"),
        "chart": build_chart(data, folder / f"{stem}.png"),
    }


MIME = {"workbook": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf": "application/pdf", "chart": "image/png"}


async def _store_version(wf: Workflow, actor: Person, cycle: Cycle, data: DocumentData,
                         stem: str, source: str) -> Document:
    with tempfile.TemporaryDirectory() as tmp:
        paths = await asyncio.to_thread(_build_files, data, Path(tmp), stem)
        stored = {}
        for kind, path in paths.items():
            stored[kind] = await wf.sv.store.put(wf.s, path.read_bytes(), path.name, MIME[kind])
    digest = hashlib.sha256(
        "\n".join(f"{k}:{stored[k].sha256}" for k in sorted(stored)).encode()).hexdigest()
    return await wf.add_document(actor, cycle, sha256=digest,
                                 workbook_file_id=stored["workbook"].id,
                                 pdf_file_id=stored["pdf"].id, chart_file_id=stored["chart"].id,
                                 source=source)


def file_stem(cycle: Cycle, version: int, suffix: str = "") -> str:
    period = f"TW{cycle.quarter}" if cycle.quarter else "Tahunan"
    return f"Pengukuran-Kinerja-{cycle.year}-{period}-v{version}{suffix}"


async def compile_documents(wf: Workflow, actor: Person, cycle: Cycle) -> Document:
    """Build the documents from the bidang data as a new draft version (step 6)."""
    current = await wf.current_document(cycle.id)
    version = (current.version + 1) if current else 1
    data = await document_data(wf, cycle, version=version)
    return await _store_version(wf, actor, cycle, data, file_stem(cycle, version), "compiled")


def apply_edits(data: DocumentData, edits: Mapping[str, "RowEdit"]) -> DocumentData:
    """``data`` with each row's target, realisation and note taken from an edited
    workbook (rows without an edit stay as they are)."""
    rows = []
    for row in data.rows:
        edit = edits.get(row.code)
        rows.append(row if edit is None else
                    replace(row, target=edit.target, realisasi=edit.realisasi, note=edit.note))
    return replace(data, rows=tuple(rows))


async def workbook_expectations(wf: Workflow, cycle: Cycle) -> tuple[list[str], dict[str, ValueType]]:
    """The indicator codes (and their value types) a returned workbook must hold."""
    codes, types = [], {}
    for item in await wf.cycle_items(cycle.id):
        ind = await wf.s.get(Indicator, item.indicator_id)
        codes.append(ind.code)
        types[ind.code] = ind.value_type
    return codes, types


async def compile_uploaded(wf: Workflow, actor: Person, cycle: Cycle,
                           edits: Mapping[str, "RowEdit"]) -> tuple[Document, DocumentData]:
    """A workbook edited offline and sent back: the documents rebuilt from its figures,
    kept as a new version with source "uploaded" (step 6)."""
    current = await wf.current_document(cycle.id)
    version = (current.version + 1) if current else 1
    data = apply_edits(await document_data(wf, cycle, version=version), edits)
    doc = await _store_version(wf, actor, cycle, data, file_stem(cycle, version), "uploaded")
    return doc, data


async def stamp_numbered(wf: Workflow, actor: Person, cycle: Cycle, letter: LetterNumber) -> Document:
    """After numbering: the signed content with the letter number, date, verification
    code and QR stamped in, kept as the final version (the signed one stays as it was)."""
    from models.enums import DocumentStatus

    signed = await wf.current_document(cycle.id)
    version = signed.version + 1
    code = new_verification_code()
    head = await audit.current_head(wf.s)  # printed on the final PDF
    data = await document_data(wf, cycle, version=version, letter=letter,
                               verification_code=code, signed_doc=signed, audit_head=head.line)
    doc = await _store_version(wf, actor, cycle, data, file_stem(cycle, version, "-final"),
                               "numbered")
    doc.status = DocumentStatus.NUMBERED
    doc.verification_code = code
    letter.document_id = doc.id
    await wf.s.flush()
    return doc


async def verify_code(session, code: str) -> dict | None:
    """What /cek and `sopbot verify` answer for a verification code."""
    code = code.strip().upper()
    doc = (await session.execute(select(Document).where(Document.verification_code == code))
           ).scalar_one_or_none()
    if doc is None:
        return None
    letter = (await session.execute(select(LetterNumber).where(LetterNumber.document_id == doc.id))
              ).scalars().first()
    signed = (await session.execute(
        select(Approval, Person).join(Person, Person.id == Approval.person_id)
        .join(Document, Document.id == Approval.document_id)
        .where(Document.cycle_id == doc.cycle_id, Approval.action == ApprovalAction.SIGN)
        .order_by(Approval.id.desc()))).first()
    pdf = await session.get(StoredFile, doc.pdf_file_id) if doc.pdf_file_id else None
    paraf = []
    if signed:
        paraf = [{"name": p.name, "capacity": await approval_capacity(session, a),
                  "at": a.created_at} for a, p in (await session.execute(
                      select(Approval, Person).join(Person, Person.id == Approval.person_id)
                      .where(Approval.document_id == signed[0].document_id,
                             Approval.action == ApprovalAction.PARAF)
                      .order_by(Approval.id))).all()]
    return {
        "code": code, "letter_number": letter.number if letter else None,
        "letter_date": letter.letter_date if letter else None,
        "signer": signed[1].name if signed else "-",
        "capacity": await approval_capacity(session, signed[0]) if signed else "",
        "initials": paraf,
        "signed_at": signed[0].created_at if signed else None,
        "sha256": pdf.sha256 if pdf else doc.sha256, "cycle_id": doc.cycle_id,
        "version": doc.version,
    }



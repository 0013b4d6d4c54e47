"""From the database to the documents: fill ``DocumentData``, build the workbook, PDF
and chart, store them by sha256 and record the version (steps 5-6, and the stamped
copy after numbering, step 9)."""
from __future__ import annotations

import asyncio
import re
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
from bot.periods import quarter_history, splits
from models.enums import ApprovalAction, CycleKind, Role, StepStatus, ValueType
from models.indicators import aggregation_of
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
    history = await quarter_history(s, cycle, [i.indicator_id for i in items])
    for item in items:
        ind = await s.get(Indicator, item.indicator_id)
        sub = await wf.latest_submission(cycle.id, ind.id)
        split: dict = {}
        if ind.value_type == ValueType.TEXT:
            target, real = item.target_text, (sub.value_text if sub and not sub.skipped else None)
        else:
            target, real = item.target, (sub.value if sub and not sub.skipped else None)
            if splits(cycle, ind):
                fig = history.figures(ind, real, target)
                target, real = fig.target_sd, fig.realisasi_sd
                split = dict(aggregation=aggregation_of(ind), period_target=fig.target,
                             period_realisasi=fig.realisasi)
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
            realisasi=real, note=note, evidence=evidence, **split))
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
        title=f"Pengukuran Kinerja {office.name}",
        period_label=wf.period(cycle), year=cycle.year,
        quarter=cycle.quarter if cycle.kind == CycleKind.QUARTERLY and cycle.quarter else None,
        rows=tuple(await indicator_rows(wf, cycle)),
        steps=tuple(await step_timings(wf, cycle)),
        signatory=await signatory(wf, cycle, signed_doc),
        initials=await initials(wf, signed_doc),
        letter_number=letter.number if letter else None,
        letter_date=letter.letter_date if letter else None,
        verification_code=verification_code,
        verification_url_or_text=((wf.sv.verification_link(verification_code)
                                   or f"Cek keaslian: kirim /cek {verification_code} ke bot")
                                  if verification_code else None),
        cap=opts["cap"] if isinstance(opts["cap"], CapPolicy) else None,
        bands=opts["bands"], text_scale=opts["text_scale"],
        example_data=office.example_data, version=version,
        audit_head=audit_head, **_kop(wf))


def _kop(wf: Workflow) -> dict[str, str]:
    """The kop's address and logo from ``[office]`` in the configuration."""
    cfg = wf.sv.config
    logo = cfg.office.logo.strip()
    return {"address": cfg.office.address.strip(),
            "logo_path": str(cfg.resolve(logo)) if logo else ""}


def _build_files(data: DocumentData, folder: Path, stem: str
                 ) -> tuple[dict[str, Path], tuple | None]:
    from reports.chart import build_chart
    from reports.pdf import build_pdf_with_signature_box
    from reports.workbook import build_workbook

    pdf, box = build_pdf_with_signature_box(data, folder / f"{stem}.pdf")
    return {
        "workbook": build_workbook(data, folder / f"{stem}.xlsx"),
        "pdf": pdf,
        "chart": build_chart(data, folder / f"{stem}.png"),
    }, box


MIME = {"workbook": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf": "application/pdf", "chart": "image/png"}


async def _store_version(wf: Workflow, actor: Person, cycle: Cycle, data: DocumentData,
                         stem: str, source: str, sign=None) -> Document:
    """Build and store one version. The version's sha256 is the sha256 of its PDF file,
    exactly the bytes people are shown (the workbook's is its own file's). ``sign``,
    given for the final version, turns the built PDF into the signed one before it is
    stored: ``await sign(pdf_bytes, box) -> bytes``.

    A compiled or uploaded version is refused (``bot.uploads.QuotaExceeded``) before
    anything is built when the cycle holds ``max_document_versions`` of them; an uploaded
    one, once built, when its files would take the actor past their upload quota. Either
    way nothing is stored."""
    from bot import uploads

    if source in uploads.CAPPED_SOURCES:
        await uploads.check_versions(wf.s, wf.sv.config, cycle.id)
    if source == uploads.UPLOADED:  # a quota already full: refused before building too
        await uploads.check_quota(wf.s, wf.sv.config, actor.id, cycle.id, 0, len(MIME))
    with tempfile.TemporaryDirectory() as tmp:
        paths, box = await asyncio.to_thread(_build_files, data, Path(tmp), stem)
        contents = {}
        for kind, path in paths.items():
            content = path.read_bytes()
            if kind == "pdf" and sign is not None:
                content = await sign(content, box)
            contents[kind] = content
        if source == uploads.UPLOADED:
            await uploads.check_quota(wf.s, wf.sv.config, actor.id, cycle.id,
                                      sum(map(len, contents.values())), len(contents))
        stored = {}
        for kind, path in paths.items():
            stored[kind] = await wf.sv.store.put(wf.s, contents[kind], path.name, MIME[kind])
    digest = stored["pdf"].sha256
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
    signer = wf.sv.signer
    data = await document_data(wf, cycle, version=version, letter=letter,
                               verification_code=code, signed_doc=signed, audit_head=head.line)
    data = replace(data, e_signed=signer is not None)
    sign = None
    if signer is not None:
        sign = await _pades_signing(wf, signer, signed, data)
    doc = await _store_version(wf, actor, cycle, data, file_stem(cycle, version, "-final"),
                               "numbered", sign=sign)
    doc.status = DocumentStatus.NUMBERED
    doc.verification_code = code
    doc.approved_sha256 = signed.sha256  # the PDF the signer approved
    if signer is not None:
        doc.signature = f"{signer.level}; {signer.subject}; sha256 {signer.fingerprint}"
    letter.document_id = doc.id
    await wf.s.flush()
    await audit.record(wf.s, "document.final", actor_id=actor.id, cycle_id=cycle.id,
                       at=wf.now, document=doc.id, version=doc.version, sha256=doc.sha256,
                       approved_version=signed.version, approved_sha256=signed.sha256,
                       signature=doc.signature or "tanpa tanda tangan elektronik")
    return doc


async def _pades_signing(wf: Workflow, signer, signed: Document, data: DocumentData):
    """The ``sign`` step of the final version: the signer's own name and capacity (a
    Plh./Plt. signs as themselves), the time of their approval in the office's zone."""
    from bot.signing import SignatureBox

    approval = (await wf.s.execute(select(Approval).where(
        Approval.document_id == signed.id, Approval.action == ApprovalAction.SIGN)
        .order_by(Approval.id.desc()))).scalars().first()
    person = await wf.s.get(Person, approval.person_id) if approval else None
    capacity = await approval_capacity(wf.s, approval) if approval else ""
    office = await wf.office()
    when = (approval.created_at if approval else wf.now).astimezone(wf.sv.calendar.tz)
    name = person.name if person else data.signatory.name

    async def sign(pdf_bytes: bytes, box) -> bytes:
        from bot.signing import SigningError
        from bot.texts import t
        from bot.workflow import WorkflowError

        try:
            return await signer.sign(
                pdf_bytes, signer_name=name, capacity=capacity or data.signatory.full_title,
                reason=f"Persetujuan {data.title} {data.period_label}",
                location=office.place, when=when, box=SignatureBox(*box) if box else None)
        except SigningError as exc:  # the transaction rolls back: no number, nothing signed
            raise WorkflowError(t("sig.failed", reason=str(exc))) from None

    return sign


def normalize_code(text: str) -> str | None:
    """A verification code as stored ("ABCD-EFGH") from what people type or scan: any
    case, with or without the dash or spaces, with the deep link's "cek_" prefix; None
    when it cannot be a code."""
    raw = re.sub(r"[\s\-_]", "", (text or "").strip().upper())
    raw = raw.removeprefix("CEK")
    if len(raw) != 8 or any(ch not in CODE_ALPHABET for ch in raw):
        return None
    return f"{raw[:4]}-{raw[4:]}"


async def verify_code(session, code: str, *, store=None, trust_roots=()) -> dict | None:
    """What /cek and `sopbot verify` answer for a verification code. With ``store`` the
    final PDF's PAdES signature is checked too (``signature``: a SignatureCheck)."""
    code = normalize_code(code) or ""
    doc = (await session.execute(select(Document).where(Document.verification_code == code))
           ).scalar_one_or_none() if code else None
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
    approved = await session.get(Document, signed[0].document_id) if signed else None
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
        "approved_sha256": doc.approved_sha256 or (signed[0].document_sha256 if signed else ""),
        "approved_version": approved.version if approved is not None else None,
        "signature": await _check_stored(store, pdf, trust_roots) if store and pdf else None,
    }


async def _check_stored(store, pdf: StoredFile, trust_roots):
    from bot.signing import check_pdf

    return await check_pdf(store.read(pdf), trust_roots)




async def find_by_pdf_sha256(session, sha256: str) -> dict | None:
    """The document version whose PDF has this sha256 (``sopbot verify BERKAS.pdf``):
    for a numbered final, everything /cek says; for another version, its number."""
    stored = (await session.execute(select(StoredFile).where(StoredFile.sha256 == sha256))
              ).scalar_one_or_none()
    if stored is None:
        return None
    doc = (await session.execute(select(Document).where(Document.pdf_file_id == stored.id)
                                 .order_by(Document.version.desc()))).scalars().first()
    if doc is None:
        return None
    if doc.verification_code:
        found = await verify_code(session, doc.verification_code)
        return {**found, "final": True, "signature": doc.signature}
    return {"final": False, "version": doc.version, "signature": doc.signature}

"""From the database to the documents: fill ``DocumentData``, build the workbook, PDF
and chart, store them by sha256 and record the version (steps 5-6, and the stamped
copy after numbering, step 9)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import secrets
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, select

from bot.core import audit
from bot.texts import role_title
from models import (
    Approval, Cycle, CycleIndicator, Delivery, Document, Evidence, Indicator, LetterNumber,
    Person, StepRun, StoredFile, Submission, Unit,
)
from bot.core.periods import quarter_history, splits
from models.enums import ApprovalAction, CycleKind, DeliveryStatus, Role, StepStatus, ValueType
from models.indicators import aggregation_of
from reports.document_data import (
    RECEIPT_NOT_SENT, RECEIPT_RECEIVED, RECEIPT_WAITING, STEP_DONE, STEP_NOT_STARTED, STEP_OPEN,
    STEP_RETURNED, STEP_SKIPPED, Compliance, DocumentData, IndicatorRow, Initial, Signatory,
    StepTiming,
)
from reports.measure import CapPolicy

if TYPE_CHECKING:
    from bot.core.workflow import Workflow
    from reports.workbook import RowEdit

log = logging.getLogger(__name__)

#: What the appendix of the final (numbered, signed) PDF says of its moment.
FINAL_AS_OF_NOTE = ("saat dokumen ini diberi nomor (langkah 9); langkah sesudahnya tercatat "
                    "di arsip siklus, berkas kepatuhan-sop.csv")

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_verification_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def indicator_rows(wf: Workflow, cycle: Cycle) -> list[IndicatorRow]:
    """The rows of the documents, loaded in a fixed number of queries whatever the
    number of indicators: units, the cycle's items with their indicators, the latest
    submission of each, their evidence file names (and, for a quarterly cycle, the
    earlier quarters: ``quarter_history``)."""
    s = wf.s
    rows = []
    units = {u.id: u for u in (await s.execute(select(Unit))).scalars()}
    # plain rows, not ORM objects: thousands of them are read on the event loop
    items = (await s.execute(
        select(CycleIndicator.unit_id, CycleIndicator.position, CycleIndicator.target,
               CycleIndicator.target_text, Indicator.id, Indicator.code, Indicator.name,
               Indicator.sasaran, Indicator.definition, Indicator.unit_of_measure,
               Indicator.polarity, Indicator.lower_formula, Indicator.value_type,
               Indicator.cumulative, Indicator.aggregation)
        .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
        .where(CycleIndicator.cycle_id == cycle.id))).all()
    items.sort(key=lambda i: (units[i.unit_id].sort_order, i.position, i.unit_id))
    history = await quarter_history(s, cycle, [i.id for i in items])
    latest = (select(Submission.indicator_id, func.max(Submission.revision).label("rev"))
              .where(Submission.cycle_id == cycle.id).group_by(Submission.indicator_id)
              .subquery())
    on_latest = and_(Submission.indicator_id == latest.c.indicator_id,
                     Submission.revision == latest.c.rev, Submission.cycle_id == cycle.id)
    subs = {sub.indicator_id: sub for sub in (await s.execute(
        select(Submission.id, Submission.indicator_id, Submission.value,
               Submission.value_text, Submission.skipped, Submission.note,
               Submission.penghambat, Submission.upaya, Submission.pendukung)
        .join(latest, on_latest))).all()}
    files: dict[int, list[str]] = {}
    for sub_id, name in (await s.execute(
            select(Evidence.submission_id, StoredFile.filename)
            .join(StoredFile, Evidence.file_id == StoredFile.id)
            .join(Submission, Submission.id == Evidence.submission_id)
            .join(latest, on_latest).order_by(Evidence.id))).all():
        files.setdefault(sub_id, []).append(name or "bukti")
    for ind in items:  # a row: the item's unit and targets, the indicator's fields
        sub = subs.get(ind.id)
        split: dict = {}
        if ind.value_type == ValueType.TEXT:
            target, real = ind.target_text, (sub.value_text if sub and not sub.skipped else None)
        else:
            target, real = ind.target, (sub.value if sub and not sub.skipped else None)
            if splits(cycle, ind):
                fig = history.figures(ind, real, target)
                target, real = fig.target_sd, fig.realisasi_sd
                split = dict(aggregation=aggregation_of(ind), period_target=fig.target,
                             period_realisasi=fig.realisasi)
        evidence: tuple[str, ...] = ()
        note = ""
        analysis: dict = {}
        if sub is not None:
            note = sub.note or ("Dilewati" if sub.skipped else "")
            evidence = tuple(files.get(sub.id, ()))
            if not sub.skipped:
                analysis = dict(penghambat=sub.penghambat or "", upaya=sub.upaya or "",
                                pendukung=sub.pendukung or "")
        rows.append(IndicatorRow(
            bidang=units[ind.unit_id].name, sasaran=ind.sasaran, code=ind.code, name=ind.name,
            definition=ind.definition, unit=ind.unit_of_measure, polarity=ind.polarity,
            lower_formula=ind.lower_formula, value_type=ind.value_type, target=target,
            realisasi=real, note=note, evidence=evidence, **split, **analysis))
    return rows


async def sop_record(session, sop, calendar, day_minutes: int, cycle: Cycle, as_of: datetime,
                     as_of_note: str = "") -> tuple[list[StepTiming], Compliance]:
    """Every step of the SOP with its state at ``as_of`` (one row per bidang for step
    4, then one row per agency's receipt after step 11) and the cycle's total against
    the SOP's total standard. A step not started yet is listed too."""
    runs = [r for r in (await session.execute(
        select(StepRun).where(StepRun.cycle_id == cycle.id).order_by(StepRun.id))).scalars()
        if r.status != StepStatus.CANCELLED]
    units = {u.id: u for u in (await session.execute(select(Unit))).scalars()}
    people: dict[int, Person | None] = {}

    async def name_of(person_id: int | None) -> str:
        if person_id is None:
            return "-"
        if person_id not in people:
            people[person_id] = await session.get(Person, person_id)
        found = people[person_id]
        return found.name if found is not None else "-"

    def minutes(run: StepRun) -> int:
        return calendar.working_minutes_between(run.started_at, run.completed_at or as_of)

    out: list[StepTiming] = []
    for step in sop.steps:
        common = dict(number=step.number, name=step.activity, role_title=role_title(step.role),
                      standard_text=step.time.text,
                      standard_max_minutes=step.time.max_minutes(day_minutes))
        step_runs = [r for r in runs if r.step_no == step.number]
        if not step_runs:
            out.append(StepTiming(holder="-", actual_minutes=None, started=None, completed=None,
                                  state=STEP_NOT_STARTED, **common))
        groups: dict[int | None, list[StepRun]] = {}
        for run in step_runs:
            groups.setdefault(run.unit_id, []).append(run)
        ordered = sorted(groups.items(), key=lambda g: (
            units[g[0]].sort_order if g[0] in units else -1, g[0] or 0))
        for unit_id, group in ordered:
            last = group[-1]
            if any(r.status == StepStatus.OPEN for r in group):
                state = STEP_OPEN
            elif last.status == StepStatus.SKIPPED:
                state = STEP_SKIPPED
            elif last.status == StepStatus.RETURNED:
                state = STEP_RETURNED
            else:
                state = STEP_DONE
            out.append(StepTiming(
                holder=await name_of(last.completed_by_id or last.assignee_id),
                actual_minutes=sum(minutes(r) for r in group),
                started=min(r.started_at for r in group),
                completed=None if state == STEP_OPEN else max(
                    (r.completed_at for r in group if r.completed_at), default=None),
                unit=units[unit_id].name if unit_id in units else "",
                state=state, rounds=len({r.round for r in group}), **common))
        if step.kind == "deliver":
            for d in (await session.execute(select(Delivery).where(
                    Delivery.cycle_id == cycle.id).order_by(Delivery.id))).scalars():
                if d.status == DeliveryStatus.RECEIVED:
                    state, end = RECEIPT_RECEIVED, d.received_at
                elif d.status == DeliveryStatus.SENT:
                    state, end = RECEIPT_WAITING, as_of
                else:
                    state, end = RECEIPT_NOT_SENT, None
                holder = d.received_by or await name_of(d.contact_person_id)
                out.append(StepTiming(
                    number=step.number, name=f"Tanda terima {d.agency_name}",
                    role_title=role_title(Role.CONTACT), holder=holder,
                    standard_text="waktu OPD", standard_max_minutes=0,
                    actual_minutes=(calendar.working_minutes_between(d.sent_at, end)
                                    if d.sent_at and end else None),
                    started=d.sent_at, completed=d.received_at, state=state, counted=False))
    # finished: every step has run and none is open (the receipts are not steps)
    finished = (bool(runs) and {r.step_no for r in runs} >= {st.number for st in sop.steps}
                and not any(r.status == StepStatus.OPEN for r in runs))
    start = min((r.started_at for r in runs), default=None)
    end = (max((r.completed_at for r in runs if r.completed_at), default=as_of)
           if finished else as_of)
    compliance = Compliance(
        standard_text=sop.total_text,
        standard_minutes=sum(s.time.max_minutes(day_minutes) for s in sop.steps),
        actual_minutes=calendar.working_minutes_between(start, end) if start else None,
        finished=finished, as_of=as_of, as_of_note=as_of_note)
    return out, compliance


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
        from bot.core.authority import covering

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
                        audit_head: str | None = None,
                        as_of_note: str = "saat dokumen ini disusun",
                        rows: list[IndicatorRow] | None = None) -> DocumentData:
    """``rows``: the indicator rows when the caller read them already (in a read-only
    session, before a transaction that must stay short)."""
    office = await wf.office()
    opts = wf.sv.measurement_options()
    steps, compliance = await sop_record(wf.s, wf.sop, wf.sv.calendar, wf.sv.day_minutes,
                                         cycle, wf.now, as_of_note)
    return DocumentData(
        office_name=office.name, regency=office.regency,
        title=f"Pengukuran Kinerja {office.name}",
        period_label=wf.period(cycle), year=cycle.year,
        quarter=cycle.quarter if cycle.kind == CycleKind.QUARTERLY and cycle.quarter else None,
        rows=tuple(rows if rows is not None else await indicator_rows(wf, cycle)),
        steps=tuple(steps), compliance=compliance,
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
        audit_head=audit_head, day_minutes=wf.sv.day_minutes,
        timezone=wf.sv.calendar.tz.key, **_kop(wf))


def _kop(wf: Workflow) -> dict[str, str]:
    """The kop's address and logo from ``[office]`` in the configuration."""
    cfg = wf.sv.config
    logo = cfg.office.logo.strip()
    return {"address": cfg.office.address.strip(),
            "logo_path": str(cfg.resolve(logo)) if logo else ""}


#: The files of a version, in the order they are recorded.
KINDS = ("workbook", "pdf", "chart")


def _build_files(data: DocumentData, folder: Path, stem: str,
                 kinds: tuple[str, ...] = KINDS) -> tuple[dict[str, Path], tuple | None]:
    """Build the files of ``kinds`` into ``folder``; the PDF's signature box (None
    without the PDF)."""
    paths: dict[str, Path] = {}
    box = None
    for kind in kinds:
        if kind == "workbook":
            from reports.workbook import build_workbook

            paths[kind] = build_workbook(data, folder / f"{stem}.xlsx")
        elif kind == "pdf":
            from reports.pdf import build_pdf_with_signature_box

            paths[kind], box = build_pdf_with_signature_box(data, folder / f"{stem}.pdf")
        elif kind == "chart":
            from reports.chart import build_chart

            paths[kind] = build_chart(data, folder / f"{stem}.png")
        else:
            raise ValueError(f"unknown kind of file: {kind}")
    return paths, box


MIME = {"workbook": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf": "application/pdf", "chart": "image/png"}

#: Documents built at the same time in this process (each worker holds one office's
#: files in memory): a second compile waits for a free slot, in its worker thread.
BUILD_SLOTS = threading.BoundedSemaphore(1)


@dataclass(frozen=True)
class BuiltFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Built:
    """The files of one version, built, hashed and written to the store."""

    files: dict[str, BuiltFile]
    box: tuple | None = None  # where the PDF leaves room for the e-signature
    pdf: bytes | None = None  # the PDF's bytes, kept only when it is to be signed
    # the files' bytes, not yet in the store (an uploaded version: its quota first)
    held: dict[str, bytes] | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    @classmethod
    def merged(cls, parts: list[Built]) -> Built:
        """One version's files from the parts built apart (:data:`KINDS` order)."""
        files = {kind: part.files[kind] for kind in KINDS for part in parts
                 if kind in part.files}
        held = None
        if any(part.held is not None for part in parts):
            held = {kind: part.held[kind] for kind in KINDS for part in parts
                    if part.held and kind in part.held}
        box = next((part.box for part in parts if "pdf" in part.files), None)
        pdf = next((part.pdf for part in parts if part.pdf is not None), None)
        return cls(files, box, pdf, held)


def build_and_store(store, data: DocumentData, stem: str, *, keep_pdf: bool = False,
                    hold: bool = False, kinds: tuple[str, ...] = KINDS) -> Built:
    """Blocking: build the files of ``kinds`` (by default the workbook, PDF and chart),
    hash them and write them to the store. Run off the event loop
    (:func:`build_off_loop`); one file's bytes are in memory at a time (the PDF's too
    with ``keep_pdf``; all with ``hold``, which writes nothing), builds in one process
    wait for :data:`BUILD_SLOTS`."""
    with BUILD_SLOTS, tempfile.TemporaryDirectory() as tmp:
        paths, box = _build_files(data, Path(tmp), stem, kinds)
        files, pdf, held = {}, None, ({} if hold else None)
        for kind, path in paths.items():
            content = path.read_bytes()
            if held is not None:
                held[kind] = content
                digest = hashlib.sha256(content).hexdigest()
            elif kind == "pdf" and keep_pdf:
                pdf, digest = content, ""  # stored once signed
            else:
                digest = store.write_blob(content)
            files[kind] = BuiltFile(path.name, digest, len(content))
        return Built(files, box, pdf, held)


#: Where :func:`build_off_loop` builds: "process" (worker processes, see
#: :data:`WORKER_PARTS`: the bot's own memory does not grow with an office's documents
#: and the builders never hold the event loop's interpreter lock), or "thread" (a
#: worker thread of this process, the files one after the other; also the fallback
#: when no process can be started).
WORKER = "process"

#: The files each worker process builds, side by side (the machine's cores): the
#: workbook in one, the PDF and the chart in the other (about the same time each).
WORKER_PARTS: tuple[tuple[str, ...], ...] = (("workbook",), ("pdf", "chart"))

#: What the worker processes need, imported once (openpyxl, fpdf2: about 1.5 s of a
#: compile otherwise) by the process they are forked from. Not matplotlib (about 25 MB
#: more in every worker, the workbook's included): the PDF and chart worker imports it
#: as it starts, while the data loads and the workbook (the longer part) is built.
BUILDER_MODULES = ("bot.core.documents", "bot.core.storage", "reports.workbook",
                   "reports.pdf")


def _warm(kinds: tuple[str, ...]) -> None:
    """A worker's start: its builders imported before the data arrives (the chart's
    matplotlib; nothing else when it was forked from the pre-started process)."""
    import importlib

    for kind in kinds:
        importlib.import_module({"workbook": "reports.workbook", "pdf": "reports.pdf",
                                 "chart": "reports.chart"}[kind])


def _mp_context():
    """Worker processes are forked from a pre-started single-threaded server that has
    imported :data:`BUILDER_MODULES` ("forkserver": a worker is ready in about 0.1 s;
    never a fork of the bot itself, whose threads may hold locks); where there is no
    such server, spawned fresh (they import the builders themselves)."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(BUILDER_MODULES))
        return context
    return multiprocessing.get_context("spawn")


def start_builders() -> None:
    """At the bot's start: the process the workers are forked from starts now and
    imports the builders in the background (an idle process of about 110 MB), so a
    compile does not wait for them."""
    if WORKER != "process":
        return
    context = _mp_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except Exception as exc:  # a compile starts it (or builds in a thread)
            log.warning("the builders' process did not start: %s", exc)


class _Workers:
    """The worker processes of the builds under way: started when a build is
    announced (:func:`build_workers`), one process per entry of
    :data:`WORKER_PARTS`, ended once no build needs them (their memory goes with them:
    the next build starts fresh ones)."""

    def __init__(self) -> None:
        self.pools: list | None = None
        self.users = 0

    def start(self) -> list:
        if self.pools is None:
            from concurrent.futures import ProcessPoolExecutor

            context = _mp_context()
            self.pools = [ProcessPoolExecutor(max_workers=1, mp_context=context,
                                              initializer=_warm, initargs=(kinds,))
                          for kinds in WORKER_PARTS]
            for pool in self.pools:  # the process starts with its first task
                pool.submit(int)
        return self.pools

    def stop(self, *, terminate: bool = False) -> None:
        pools, self.pools = self.pools, None
        for pool in pools or ():
            if terminate:
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    with contextlib.suppress(Exception):
                        proc.terminate()
            pool.shutdown(wait=False, cancel_futures=terminate)


_workers = _Workers()


@contextlib.contextmanager
def build_workers():
    """Around a build (from before its data is loaded): the worker processes start
    now, and end after the last build that asked for them. Nothing in thread mode."""
    if WORKER != "process":
        yield
        return
    _workers.users += 1
    try:
        with contextlib.suppress(OSError):
            _workers.start()
        yield
    finally:
        _workers.users -= 1
        if _workers.users == 0:
            _workers.stop()


def stop_workers() -> None:
    """At the bot's stop: a build under way is abandoned (its compile job is still open
    in the database and runs again at the next start), so the process exits now."""
    _workers.stop(terminate=True)


async def build_off_loop(store, data: DocumentData, stem: str, *, keep_pdf: bool = False,
                         hold: bool = False) -> Built:
    """:func:`build_and_store` off the event loop (see :data:`WORKER`): the loop keeps
    serving everybody else meanwhile."""
    if WORKER == "process":
        from concurrent.futures.process import BrokenProcessPool

        with build_workers():
            try:
                loop = asyncio.get_running_loop()
                parts = await asyncio.gather(*[
                    loop.run_in_executor(pool, functools.partial(
                        build_and_store, store, data, stem, keep_pdf=keep_pdf, hold=hold,
                        kinds=kinds))
                    for pool, kinds in zip(_workers.start(), WORKER_PARTS)])
                return Built.merged(list(parts))
            except (BrokenProcessPool, OSError) as exc:  # no worker process: build here
                log.warning("documents built in a thread: no worker process (%s)", exc)
                _workers.stop(terminate=True)
    return await asyncio.to_thread(functools.partial(
        build_and_store, store, data, stem, keep_pdf=keep_pdf, hold=hold))


async def _check_caps(wf: Workflow, actor: Person, cycle: Cycle, source: str) -> None:
    from bot.core import uploads

    if source in uploads.CAPPED_SOURCES:
        await uploads.check_versions(wf.s, wf.sv.config, cycle.id)
    if source == uploads.UPLOADED:  # a quota already full: refused before building too
        await uploads.check_quota(wf.s, wf.sv.config, actor.id, cycle.id, 0, len(MIME))


async def record_version(wf: Workflow, actor: Person, cycle: Cycle, built: Built,
                         source: str) -> Document:
    """Record built files (already in the store) as the cycle's new version."""
    from bot.core import uploads

    if source == uploads.UPLOADED:
        await uploads.check_quota(wf.s, wf.sv.config, actor.id, cycle.id, built.size,
                                  len(built.files))
    if built.held:  # within the quota: now into the store
        await asyncio.to_thread(lambda: [wf.sv.store.write_blob(c) for c in built.held.values()])
    stored = {kind: await wf.sv.store.record(wf.s, f.sha256, f.size, f.name, MIME[kind])
              for kind, f in built.files.items()}
    return await wf.add_document(actor, cycle, sha256=stored["pdf"].sha256,
                                 workbook_file_id=stored["workbook"].id,
                                 pdf_file_id=stored["pdf"].id, chart_file_id=stored["chart"].id,
                                 source=source)


async def _store_version(wf: Workflow, actor: Person, cycle: Cycle, data: DocumentData,
                         stem: str, source: str, sign=None) -> Document:
    """Build and store one version. The version's sha256 is the sha256 of its PDF file,
    exactly the bytes people are shown (the workbook's is its own file's). ``sign``,
    given for the final version, turns the built PDF into the signed one before it is
    stored: ``await sign(pdf_bytes, box) -> bytes``.

    A compiled or uploaded version is refused (``bot.core.uploads.QuotaExceeded``) before
    anything is built when the cycle holds ``max_document_versions`` of them; an uploaded
    one, once built, when its files would take the actor past their upload quota. Either
    way nothing is recorded (the store may keep the blobs: content-addressed, unused)."""
    from bot.core import uploads

    await _check_caps(wf, actor, cycle, source)
    built = await build_off_loop(wf.sv.store, data, stem, keep_pdf=sign is not None,
                                 hold=source == uploads.UPLOADED)
    if sign is not None:
        content = await sign(built.pdf, built.box)
        digest = await asyncio.to_thread(wf.sv.store.write_blob, content)
        files = dict(built.files)
        files["pdf"] = BuiltFile(files["pdf"].name, digest, len(content))
        built = Built(files, built.box)
    return await record_version(wf, actor, cycle, built, source)


def file_stem(cycle: Cycle, version: int, suffix: str = "") -> str:
    period = f"TW{cycle.quarter}" if cycle.quarter else "Tahunan"
    return f"Pengukuran-Kinerja-{cycle.year}-{period}-v{version}{suffix}"


async def compile_documents(wf: Workflow, actor: Person, cycle: Cycle) -> Document:
    """Build the documents from the bidang data as a new draft version (step 6), in
    one session (the bot itself compiles in the background: ``bot.core.compiler``)."""
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


def _value_to_json(value):
    from decimal import Decimal

    if value is None:
        return None
    return ["d", str(value)] if isinstance(value, Decimal) else ["s", str(value)]


def _value_from_json(value):
    from decimal import Decimal

    if value is None:
        return None
    tag, text = value
    return Decimal(text) if tag == "d" else text


def edits_to_json(edits: Mapping[str, "RowEdit"]) -> dict:
    """The figures read from an edited workbook, as JSON (kept with its build job)."""
    return {code: [_value_to_json(e.target), _value_to_json(e.realisasi), e.note]
            for code, e in edits.items()}


def edits_from_json(raw: Mapping[str, list]) -> dict[str, "RowEdit"]:
    from reports.workbook import RowEdit

    return {code: RowEdit(target=_value_from_json(t), realisasi=_value_from_json(r), note=n)
            for code, (t, r, n) in raw.items()}


async def workbook_expectations(wf: Workflow, cycle: Cycle) -> tuple[list[str], dict[str, ValueType]]:
    """The indicator codes (and their value types) a returned workbook must hold."""
    codes, types = [], {}
    for code, value_type in (await wf.s.execute(
            select(Indicator.code, Indicator.value_type)
            .join(CycleIndicator, CycleIndicator.indicator_id == Indicator.id)
            .where(CycleIndicator.cycle_id == cycle.id)
            .order_by(CycleIndicator.unit_id, CycleIndicator.position))).all():
        codes.append(code)
        types[code] = value_type
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


@dataclass
class FinalPlan:
    """What the final version is made of, read before it is built: the data with the
    number stamped in, the signing step (``None``: unsigned), the signed version."""

    data: DocumentData
    stem: str
    code: str
    sign: object | None
    signer: object | None  # its subject and fingerprint are read once it has signed
    signed_id: int
    signed_version: int
    signed_sha256: str


async def plan_final(wf: Workflow, cycle: Cycle, letter, *, signer=None,
                     audit_head: audit.Head | None = None,
                     rows: list[IndicatorRow] | None = None) -> FinalPlan:
    """The final version's data for ``letter`` (its ``number`` and ``letter_date`` are
    read: the number may be the one about to be given, see ``handlers.signoff``).
    ``audit_head``: the head to print when it is not this session's (a head that is
    committed: a plan made in a transaction that is rolled back); ``rows``: see
    :func:`document_data`."""
    signed = await wf.current_document(cycle.id)
    version = signed.version + 1
    code = new_verification_code()
    head = audit_head or await audit.current_head(wf.s)  # printed on the final PDF
    signer = signer if signer is not None else wf.sv.signer
    # the final PDF is made (and signed) at numbering: its appendix records every step
    # as it stands at that moment; steps 10-11 come after it, the archive records them
    data = await document_data(wf, cycle, version=version, letter=letter,
                               verification_code=code, signed_doc=signed, audit_head=head.line,
                               as_of_note=FINAL_AS_OF_NOTE, rows=rows)
    data = replace(data, e_signed=signer is not None)
    sign = None
    if signer is not None:
        sign = await _pades_signing(wf, signer, signed, data)
    return FinalPlan(data=data, stem=file_stem(cycle, version, "-final"), code=code, sign=sign,
                     signer=signer, signed_id=signed.id, signed_version=signed.version,
                     signed_sha256=signed.sha256)


async def build_final(store, plan: FinalPlan) -> Built:
    """The final version's files built (off the event loop) and its PDF signed; touches
    no database session."""
    built = await build_off_loop(store, plan.data, plan.stem, keep_pdf=plan.sign is not None)
    if plan.sign is not None:
        content = await plan.sign(built.pdf, built.box)
        digest = await asyncio.to_thread(store.write_blob, content)
        files = dict(built.files)
        files["pdf"] = BuiltFile(files["pdf"].name, digest, len(content))
        built = Built(files, built.box)
    return built


async def record_final(wf: Workflow, actor: Person, cycle: Cycle, letter: LetterNumber,
                       plan: FinalPlan, built: Built) -> Document:
    """The built final version recorded for the given ``letter``, with its audit record."""
    from models.enums import DocumentStatus

    doc = await record_version(wf, actor, cycle, built, "numbered")
    doc.status = DocumentStatus.NUMBERED
    doc.verification_code = plan.code
    doc.approved_sha256 = plan.signed_sha256  # the PDF the signer approved
    signer = plan.signer
    if signer is not None:  # (a TTE gateway's certificate is known once it has signed)
        doc.signature = f"{signer.level}; {signer.subject}; sha256 {signer.fingerprint}"
    letter.document_id = doc.id
    await wf.s.flush()
    await audit.record(wf.s, "document.final", actor_id=actor.id, cycle_id=cycle.id,
                       at=wf.now, document=doc.id, version=doc.version, sha256=doc.sha256,
                       approved_version=plan.signed_version, approved_sha256=plan.signed_sha256,
                       signature=doc.signature or "tanpa tanda tangan elektronik")
    return doc


async def stamp_numbered(wf: Workflow, actor: Person, cycle: Cycle, letter: LetterNumber, *,
                         signer=None) -> Document:
    """After numbering: the signed content with the letter number, date, verification
    code and QR stamped in, kept as the final version (the signed one stays as it was).
    ``signer``: who signs the final PDF (a TTE gateway call for the signer), else the
    office's certificate (``wf.sv.signer``), else nobody. In one session; the bot's
    "Beri nomor" builds it in the background (``handlers.signoff``, a numbering job)."""
    plan = await plan_final(wf, cycle, letter, signer=signer)
    built = await build_final(wf.sv.store, plan)
    return await record_final(wf, actor, cycle, letter, plan, built)


async def _pades_signing(wf: Workflow, signer, signed: Document, data: DocumentData):
    """The ``sign`` step of the final version: the signer's own name and capacity (a
    Plh./Plt. signs as themselves), the time of their approval in the office's zone."""
    from bot.core.signing import SignatureBox

    approval = (await wf.s.execute(select(Approval).where(
        Approval.document_id == signed.id, Approval.action == ApprovalAction.SIGN)
        .order_by(Approval.id.desc()))).scalars().first()
    person = await wf.s.get(Person, approval.person_id) if approval else None
    capacity = await approval_capacity(wf.s, approval) if approval else ""
    place = (await wf.office()).place  # plain values: the session may be closed by then
    when = (approval.created_at if approval else wf.now).astimezone(wf.sv.calendar.tz)
    name = person.name if person else data.signatory.name
    clock = wf.sv.clock

    async def sign(pdf_bytes: bytes, box) -> bytes:
        from bot.core.signing import SigningError
        from bot.texts import t
        from bot.core.errors import WorkflowError

        try:
            return await signer.sign(
                pdf_bytes, signer_name=name, capacity=capacity or data.signatory.full_title,
                reason=f"Persetujuan {data.title} {data.period_label}",
                location=place, when=when, box=SignatureBox(*box) if box else None,
                signing_time=clock.now())  # the signature's own time: the bot's clock
        except SigningError as exc:  # nothing recorded: no number, nothing signed
            if getattr(signer, "gateway", None) is not None:
                raise  # the TTE chat step says it in its own words (and may ask again)
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


async def document_by_code(session, code: str) -> Document | None:
    """The document version that carries this verification code (as stored)."""
    return (await session.execute(select(Document).where(
        Document.verification_code == code))).scalar_one_or_none()


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
    from bot.core.signing import check_pdf

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

"""Steps 6-11: the Kasubag compiles the documents (and may send back an edited
workbook), the Sekretaris initials, the Kadis signs (either may return them with a
reason), the staf numbers them, the Kasubag archives them, the staf delivers them and
records the receipts; ``/cek KODE`` verifies a numbered document for anyone.

Conversations (kept in the database): ``compile`` (an .xlsx sent while step 6 is open
is read as an edited workbook), ``ret_reason`` (the reason of a return), ``receipt``
(the photo of a signed receipt).
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import tempfile
import time
from pathlib import Path

from telegram import InputFile, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.core import archive
from bot import callbacks, render
from bot.core import compiler as compile_jobs
from bot.core.compiler import open_job
from bot.core.documents import (
    document_by_code,
    edits_to_json, verify_code,
    workbook_expectations,
)
from bot.core.secret_input import PASSPHRASE
from bot.core.outbox import record_sent
from handlers.markup import keyboard, keyboard_removed
from bot.texts import TEXTS, Raw, t
from bot.core.workcal import format_wib
from bot.core.workflow import NotFound, StaleAction, Workflow, WorkflowError
from handlers.common import (
    Context, action, clear_conversation, download, drop_buttons, file_route,
    get_conversation, reply, services, sessionmaker, set_conversation, text_route,
    transaction, typed_reason, typed_text,
)
from handlers.tasks import delivery_card
from models import (
    Approval, CompileJob, Delivery, Document, Person, StepRun, StoredFile,
)
from models.enums import CycleStatus, DeliveryStatus, DocumentStatus, Role, StepStatus
from reports.document_data import DocumentData, iter_lowest
from reports.measure import summarise
from reports.numbers import format_date, format_percent

log = logging.getLogger(__name__)

COMPILE, RET_REASON, RECEIPT = "compile", "ret_reason", "receipt"
NUMBERED = "numbered"  # the kind of a numbering job (bot.core.compiler)
TTE_SIGNED = "tte_signed"  # the kind of a TTE signature job (step 8 with a gateway)
TTE_PASS = PASSPHRASE  # waiting for the signer's TTE passphrase (bot/core/secret_input.py)
ASKED, SIGNING = "passphrase", "signing"  # its states: asked; a signature job under way
MAX_REASON = 1000
MAX_ERRORS_SHOWN = 15
RECEIPT_TYPES = (".pdf", ".jpg", ".jpeg", ".png")  # a scan or a photo of the receipt
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ------------------------------------------------------------------ helpers
async def _open_run(wf: Workflow, person: Person, run_id: int, *kinds: str) -> StepRun:
    """The run of a pressed button: open, of the expected kind, held by ``person`` who
    may hold it now (the engine's one check, ``bot.core.authority``)."""
    run = await wf.get_run(run_id)
    step = wf.sop.step(run.step_no)
    if step.kind not in kinds or run.status != StepStatus.OPEN:
        raise StaleAction()
    await wf._require_holder(run, person, step)
    return run


def summary_text(data: DocumentData) -> str:
    """The reports' own summary when it exists, else counts and the lowest capaian."""
    try:
        module = importlib.import_module("reports.summary")
    except ModuleNotFoundError:
        module = None
    if module is not None and hasattr(module, "summary_text"):
        return f"{module.summary_text(data)}\n<i>Versi {data.version}</i>"
    measured = data.measured()
    s = summarise([result for _, result in measured])
    lines = [t("g.summary_head", period=data.period_label, version=data.version),
             t("g.summary_counts", total=s.total, reached=s.reached,
               not_reached=s.not_reached, no_data=s.no_data)]
    if s.average_score is not None:
        lines.append(t("g.summary_average", average=format_percent(s.average_score)))
    lowest = list(iter_lowest(measured, 3))
    if lowest:
        lines.append(t("g.summary_lowest"))
        lines += [t("g.summary_line", name=row.name[:70], percent=format_percent(r.percent))
                  for row, r in lowest]
    return "\n".join(lines)


def _compiled_buttons(run_id: int, doc_id: int):
    return [[(t("b.submit"), callbacks.encode("subm", run_id, doc_id))],
            [(t("b.recompile"), callbacks.encode("cmp", run_id))]]


async def _edit_card(update: Update, line: str) -> None:
    """The pressed card keeps its text, loses its buttons and gains ``line``."""
    query = update.callback_query
    message = query.message if query else None
    if message is None:
        return
    try:
        if message.text is not None:
            room = render.TEXT_LIMIT - render.visible_length(line) - 4
            kept = render.split(message.text_html, room)
            before = kept[0] if len(kept) == 1 else kept[0] + "\n" + render.ELLIPSIS
            await query.edit_message_text(f"{before}\n\n{line}", reply_markup=None)
        else:
            await query.edit_message_reply_markup(reply_markup=None)
        keyboard_removed(update.get_bot(), message.chat_id, message.message_id)
    except BadRequest:
        await drop_buttons(update)


def _now_text(context: Context) -> str:
    return format_wib(services(context).clock.now())


# ------------------------------------------------------------------ step 6: compile
def compiler(context: Context):
    """The background compiler (``bot.core.compiler``), started with the bot."""
    from bot.core.compiler import Compiler

    bot_data = context.application.bot_data
    if bot_data.get("compiler") is None:  # an application started without post_init
        bot_data["compiler"] = Compiler(bot_data["sessionmaker"],
                                        compile_job_runner(context.application))
        bot_data["compiler"].start()
    return bot_data["compiler"]


@action(Role.KASUBAG, callback=True)
async def compile_press(update: Update, context: Context, person: Person, cb) -> str | None:
    """Records the compile (a ``CompileJob``, committed with this update) and returns:
    the documents are built in the background (``bot.core.compiler``, :func:`run_compile_job`),
    so nobody waits for them, the person who pressed included."""
    from bot.core.uploads import QuotaExceeded, check_versions

    try:
        async with transaction(context) as (session, wf):
            run = await _open_run(wf, person, cb.arg(0), "compile")
            period = wf.period(await wf.get_cycle(run.cycle_id))
            # at the cap of versions: said at once, the buttons stay (Ajukan still works)
            await check_versions(session, services(context).config, run.cycle_id)
            busy = await open_job(session, run.id) is not None
    except QuotaExceeded as exc:
        await reply(update, exc.message)
        return None
    if busy:
        return t("g.compile_busy", period=period)
    await drop_buttons(update)
    progress = await reply(update, t("g.compiling", period=period))
    async with transaction(context) as (session, wf):
        run = await wf.get_run(cb.arg(0), lock=True)
        run = await _open_run(wf, person, run.id, "compile")
        if await open_job(session, run.id) is None:
            session.add(CompileJob(run_id=run.id, person_id=person.id,
                                   chat_id=update.effective_chat.id,
                                   message_id=getattr(progress, "message_id", None),
                                   requested_at=wf.now))
            await session.flush()
    compiler(context).wake()
    return None


def compile_job_runner(application):
    """``run_job`` of the application's :class:`bot.core.compiler.Compiler`."""
    bot_data = application.bot_data

    async def run(job_id: int):
        return await run_compile_job(application.bot, bot_data["sessionmaker"],
                                     bot_data["services"], job_id,
                                     wake=lambda: _wake_sender(bot_data),
                                     intake=bot_data.get("intake"))
    return run


def _wake_sender(bot_data) -> None:
    sender = bot_data.get("sender")
    if sender is not None:
        sender.wake()


class _Changed(Exception):
    """Another version was recorded while this one was built: build again."""


async def run_compile_job(bot, sessionmaker, sv, job_id: int, *, wake=None,
                          attempts: int = 3, intake=None) -> Document | None:
    """One build job ("Susun dokumen", an edited workbook sent back, "Beri nomor", a
    TTE signature): its data loaded (a read-only session, closed before building),
    the files built off the event loop, the version with the message that carries
    them committed in a transaction of its own; then the progress message is edited.
    A refusal (the step no longer open or held, the cap of versions reached) finishes
    the job with the refusal told in the progress message. ``intake``: the process's
    durable intake, whose memory holds a TTE passphrase (:func:`run_tte_job`)."""
    from bot.core.uploads import QuotaExceeded

    sm = getattr(sessionmaker, "real", sessionmaker)
    async with sm() as session:
        job = await session.get(CompileJob, job_id)
        kind = job.kind if job is not None else None
    if kind == TTE_SIGNED:
        return await run_tte_job(bot, sm, sv, job_id, wake=wake, intake=intake,
                                 attempts=attempts)
    failed = t("g.numbering_failed" if kind == NUMBERED else "g.compile_failed")
    for _ in range(attempts):
        try:
            return await _compile_once(bot, sm, sv, job_id, wake)
        except _Changed:
            continue
        except (QuotaExceeded, WorkflowError) as exc:
            await _finish_job(bot, sm, sv, job_id, exc.message)
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("compile job %s failed", job_id)
            await _finish_job(bot, sm, sv, job_id, failed,
                              error=f"{exc.__class__.__name__}: {exc}")
            return None
    await _finish_job(bot, sm, sv, job_id, failed, error="changed meanwhile")
    return None


async def _compile_once(bot, sm, sv, job_id: int, wake) -> Document | None:
    """A "compiled" or "uploaded" job (a "numbered" one: :func:`_number_once`)."""
    from bot.core.documents import build_workers

    # the worker processes start (and import their builders) while the data loads
    with build_workers():
        return await _compile_in(bot, sm, sv, job_id, wake)


async def _compile_in(bot, sm, sv, job_id: int, wake) -> Document | None:
    from bot.core import outbox
    from bot.core.documents import (
        _check_caps, apply_edits, build_off_loop, document_data, edits_from_json, file_stem,
        record_version,
    )
    from bot.core.uploads import UPLOADED, check_versions

    async with sm() as session:  # read only: no lock held while the files are built
        job = await session.get(CompileJob, job_id)
        if job is None or job.finished_at is not None:
            return None
        if job.kind == NUMBERED:
            numbered = True
        else:
            numbered = False
            source = job.kind or "compiled"
            wf = Workflow(session, sv)
            person = await session.get(Person, job.person_id)
            run = await _open_run(wf, person, job.run_id, "compile")
            cycle = await wf.get_cycle(run.cycle_id)
            await _check_caps(wf, person, cycle, source)
            current = await wf.current_document(cycle.id)
            version = (current.version + 1) if current else 1
            data = await document_data(wf, cycle, version=version)
            warnings: list[str] = []
            if source == UPLOADED:  # the figures read from the workbook in the update
                data = apply_edits(data, edits_from_json(job.payload["rows"]))
                warnings = list(job.payload.get("warnings") or ())
            period = wf.period(cycle)
            chat_id, message_id, run_id = job.chat_id, job.message_id, run.id
    if numbered:
        return await _number_once(bot, sm, sv, job_id, wake)
    built = await build_off_loop(sv.store, data, file_stem(cycle, version),
                                 hold=source == UPLOADED)
    # the summary measures every row: in the worker too, before the write transaction
    summary = await asyncio.to_thread(summary_text, data)
    if source == UPLOADED:
        text = t("g.uploaded_head", version=version) + "\n\n" + summary
        if warnings:
            text += "\n\n" + t("g.upload_warnings", lines=Raw("\n".join(
                f"- {render.esc(w)}" for w in warnings[:MAX_ERRORS_SHOWN])))
    else:
        text = summary + "\n\n" + t("g.compile_hint")
    async with sm() as session:
        async with session.begin():
            if not await compile_jobs.claim(session, job_id):
                return None  # finished meanwhile
            wf = Workflow(session, sv)
            run = await wf.get_run(run_id, lock=True)
            person = await session.get(Person, person.id)
            run = await _open_run(wf, person, run.id, "compile")
            cycle = await wf.get_cycle(run.cycle_id)
            current = await wf.current_document(cycle.id)
            if ((current.version + 1) if current else 1) != version:
                raise _Changed()
            await check_versions(session, sv.config, cycle.id)
            # an upload: its quota is checked on the built files' sizes here
            doc = await record_version(wf, person, cycle, built, source)
            await set_conversation(session, person.id, COMPILE, "review",
                                   {"run": run.id, "doc": doc.id})
            await compile_jobs.mark_built(session, job_id, wf.now, doc.id)
            files = [{"file_id": fid, "kind": kind} for fid, kind in (
                (doc.workbook_file_id, "document"), (doc.pdf_file_id, "document"),
                (doc.chart_file_id, "photo")) if fid]
            await outbox.enqueue(session, person, source, text,
                                 _compiled_buttons(run.id, doc.id), at=wf.now, files=files,
                                 chat_id=chat_id)
    if wake is not None:
        wake()
    await _tell_progress(bot, chat_id, message_id,
                         t("g.compiled", period=period, version=doc.version))
    return doc


async def _number_once(bot, sm, sv, job_id: int, wake) -> Document | None:
    """A "numbered" job (step 9). The final PDF carries its number, so the number the
    register will give is read first and stamped in; the files are built and signed with
    no transaction open; then, in one transaction, the number is given (the register's
    counter, the step done, the audit records), checked to be the one stamped (else the
    whole transaction rolls back, no number is used, and the job builds again) and
    recorded with the final version and the message that carries its PDF. A number is
    thus given exactly once, with its document, and never lost."""
    from types import SimpleNamespace

    from bot.core import outbox
    from bot.core.documents import build_final, plan_final, record_final
    from bot.core.workcal import to_wib
    from bot.core.workflow import WrongState

    async with sm() as session:  # read only: no lock held while the files are built
        job = await session.get(CompileJob, job_id)
        if job is None or job.finished_at is not None:
            return None
        wf = Workflow(session, sv)
        person = await session.get(Person, job.person_id)
        run = await _open_run(wf, person, job.run_id, "number")
        cycle = await wf.get_cycle(run.cycle_id)
        signed = await wf.current_document(cycle.id)
        if signed is None or signed.status != DocumentStatus.SIGNED:
            raise WrongState(t("err.wrong_state", detail="dokumen belum ditandatangani."))
        on = to_wib(wf.now).date()
        expected = SimpleNamespace(number=await wf.next_number(cycle.office_id, on),
                                   letter_date=on)
        plan = await plan_final(wf, cycle, expected)
        period = wf.period(cycle)
        chat_id, message_id, run_id, person_id = job.chat_id, job.message_id, run.id, person.id
        card = dict(job.payload or {})
    built = await build_final(sv.store, plan)  # signed too: the signer's own time
    async with sm() as session:
        async with session.begin():
            if not await compile_jobs.claim(session, job_id):
                return None  # finished meanwhile
            wf = Workflow(session, sv)
            person = await session.get(Person, person_id)
            letter = await wf.assign_number(person, run_id)
            if ((letter.number, letter.letter_date, letter.document_id)
                    != (expected.number, expected.letter_date, plan.signed_id)):
                raise _Changed()  # another number was given meanwhile, or the day changed
            cycle = await wf.get_cycle(letter.cycle_id)
            final = await record_final(wf, person, cycle, letter, plan, built)
            await compile_jobs.mark_built(session, job_id, wf.now, final.id)
            number = letter.number
            await outbox.enqueue(session, person, "final",
                                 t("g.numbered", number=number,
                                   date=format_date(letter.letter_date),
                                   code=final.verification_code),
                                 at=wf.now, files=[{"file_id": final.pdf_file_id,
                                                    "kind": "document"}], chat_id=chat_id)
            name = person.name
    if wake is not None:
        wake()
    await _tell_progress(bot, chat_id, message_id,
                         t("g.numbering_done", period=period, number=number))
    await _close_card(bot, chat_id, card, t("g.numbered_card", number=number, name=name,
                                            time=format_wib(sv.clock.now())))
    return final


async def _close_card(bot, chat_id: int | None, card: dict, line: str) -> None:
    """The pressed card (``card``: its message id and its text as it was shown, kept with
    the job) keeps its text, loses its buttons and gains ``line``: cosmetic, like the
    progress message."""
    message_id = card.get("card")
    if bot is None or chat_id is None or message_id is None:
        return
    try:
        if card.get("html") is not None:
            await bot.edit_message_text(f"{card['html']}\n\n{line}", chat_id=chat_id,
                                        message_id=message_id, reply_markup=None)
        else:
            await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id,
                                                reply_markup=None)
        keyboard_removed(bot, chat_id, message_id)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("could not edit the numbered card %s: %s", message_id, exc)
    except Exception as exc:  # the network: the final document is on its way regardless
        log.info("could not edit the numbered card in chat %s: %s", chat_id, exc)


async def _finish_job(bot, sm, sv, job_id: int, text: str, *, error: str = "") -> None:
    async with sm() as session:
        async with session.begin():
            job = await compile_jobs.finish(session, job_id, sv.clock.now(), error or text)
            if job is None:
                return
            chat_id, message_id = job.chat_id, job.message_id
    await _tell_progress(bot, chat_id, message_id, text)


async def _tell_progress(bot, chat_id: int | None, message_id: int | None, text: str) -> None:
    """The progress message says how the compile ended (a new message when it cannot
    be edited). Not in the outbox: cosmetic, the documents come in the outbox."""
    if bot is None or chat_id is None:
        return
    try:
        if message_id is not None:
            await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        else:
            await bot.send_message(chat_id, text)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("could not edit the progress message %s: %s", message_id, exc)
    except Exception as exc:  # the network: the documents are on their way regardless
        log.info("could not tell the compile's end to chat %s: %s", chat_id, exc)


@file_route(COMPILE)
async def compile_upload(update: Update, context: Context, person: Person, conv) -> None:
    """An edited workbook sent back while step 6 is open."""
    msg = update.effective_message
    document = msg.document
    if document is None or not (document.file_name or "").lower().endswith(".xlsx"):
        await reply(update, t("g.upload_xlsx_only"))
        return
    from bot.core.uploads import (UPLOADED, QuotaExceeded, read_measurement_upload,
                                  too_large_text, xlsx_limits)
    from reports.workbook import WorkbookError
    from reports.xlsx_limits import XlsxTooLarge

    sv = services(context)
    got = await download(update, context, sv.store.max_bytes)
    async with transaction(context) as (session, wf):
        run = await _open_run(wf, person, conv.data["run"], "compile")
        cycle = await wf.get_cycle(run.cycle_id)
        if await open_job(session, run.id) is not None:
            await reply(update, t("g.compile_busy", period=wf.period(cycle)))
            return
        codes, types = await workbook_expectations(wf, cycle)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kiriman.xlsx"
        path.write_bytes(got[0])
        try:  # size and cell limits, then the read-only reader, off the event loop
            result = await asyncio.to_thread(read_measurement_upload, path, codes, types,
                                             xlsx_limits(sv.config))
        except XlsxTooLarge as exc:
            await reply(update, too_large_text(exc))
            return
        except WorkbookError as exc:
            await reply(update, t("g.upload_unreadable", error=str(exc)))
            return
    if result.errors:
        shown = [f"- {render.esc(e)}" for e in result.errors[:MAX_ERRORS_SHOWN]]
        if len(result.errors) > MAX_ERRORS_SHOWN:
            shown.append(t("g.upload_more_errors", count=len(result.errors) - MAX_ERRORS_SHOWN))
        await reply(update, t("g.upload_errors", count=len(result.errors),
                              lines=Raw("\n".join(shown))))
        return
    from bot.core.documents import _check_caps

    try:  # over the version cap or the person's upload quota: refused, nothing stored
        async with transaction(context) as (session, wf):
            run = await _open_run(wf, person, conv.data["run"], "compile")
            cycle = await wf.get_cycle(run.cycle_id)
            await _check_caps(wf, person, cycle, UPLOADED)
            period = wf.period(cycle)
    except QuotaExceeded as exc:
        await reply(update, exc.message)
        return
    # the documents are built in the background (:func:`run_compile_job`), from the
    # figures read here, kept with the job: nobody waits for the build
    progress = await reply(update, t("g.upload_building", period=period))
    payload = {"rows": edits_to_json(result.rows),
               "warnings": [str(w) for w in result.warnings]}
    async with transaction(context) as (session, wf):
        run = await wf.get_run(conv.data["run"], lock=True)
        run = await _open_run(wf, person, run.id, "compile")
        if await open_job(session, run.id) is None:
            session.add(CompileJob(run_id=run.id, person_id=person.id, kind=UPLOADED,
                                   payload=payload, chat_id=update.effective_chat.id,
                                   message_id=getattr(progress, "message_id", None),
                                   requested_at=wf.now))
            await session.flush()
    compiler(context).wake()


@text_route(COMPILE)
async def compile_text(update: Update, context: Context, person: Person, conv) -> None:
    await reply(update, t("g.text_in_compile"))


@action(Role.KASUBAG, callback=True)
async def submit_press(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        doc = await session.get(Document, cb.arg(1))
        new = await wf.submit_documents(person, cb.arg(0), cb.arg(1))
        holder = await session.get(Person, new.assignee_id)
        await clear_conversation(session, person.id)
    await drop_buttons(update)
    await reply(update, t("g.submitted", version=doc.version, name=holder.name,
                          due=format_wib(new.due_at)))
    return None


# ------------------------------------------------------------------ steps 7-8
async def _already_approved(context: Context, person: Person, run_id: int,
                            doc_id: int) -> Approval | None:
    async with sessionmaker(context)() as session:
        return await Workflow(session, services(context)).approval_by(person.id, run_id, doc_id)


@action(Role.SEKRETARIS, Role.KADIS, callback=True)
async def approve_press(update: Update, context: Context, person: Person, cb) -> str | None:
    """"prf"/"sgn": initial or sign exactly the version on the card."""
    run_id, doc_id = cb.arg(0), cb.arg(1)
    signing = cb.action == "sgn"
    try:
        if signing and services(context).gateway is not None:
            await _ask_passphrase(update, context, person, run_id, doc_id)
            return None
        async with transaction(context) as (session, wf):
            run = await wf.get_run(run_id)
            kind = wf.sop.step(run.step_no).kind
            if kind != ("sign" if signing else "review"):
                raise StaleAction()
            new = await wf.approve(person, run_id, doc_id)
            holder = await session.get(Person, new.assignee_id)
            conv = await get_conversation(session, person.id)
            if conv is not None and conv.kind == RET_REASON and conv.data.get("run") == run_id:
                await clear_conversation(session, person.id)  # pressed Paraf after all
    except StaleAction:
        done = await _already_approved(context, person, run_id, doc_id)
        if done is None or done.action.value != ("sign" if signing else "paraf"):
            raise
        async with sessionmaker(context)() as session:
            version = (await session.get(Document, doc_id)).version
        await drop_buttons(update)
        key = "g.already_signed" if signing else "g.already_initialled"
        return t(key, version=version, time=format_wib(done.created_at))
    when = _now_text(context)
    await _edit_card(update, t("g.signed" if signing else "g.initialled",
                               name=person.name, time=when))
    await reply(update, t("g.next_holder", name=holder.name, due=format_wib(new.due_at)))
    return t("g.signed_short" if signing else "g.initialled_short")


# ------------------------------------------------------------------ step 8 with a TTE gateway
async def _ask_passphrase(update: Update, context: Context, person: Person, run_id: int,
                          doc_id: int) -> None:
    """"Tandatangani" when the office signs through the Pemda's TTE gateway: the
    signer is asked for their passphrase (the card keeps its buttons until signed).
    The intake redacts the answer before it is stored (``bot/core/secret_input.py``)."""
    from bot.core.signing import gateway_nik

    query = update.callback_query
    async with transaction(context) as (session, wf):
        doc = await _review_check(wf, person, run_id, doc_id)
        if not gateway_nik(services(context).config, person.nip):
            await reply(update, t("tte.no_nik", nip=person.nip or "-"))
            return
        if await open_job(session, run_id) is not None:  # a signature under way
            await reply(update, t("tte.busy_press"))
            return
        intake = context.application.bot_data.get("intake")
        if intake is not None:  # before the question goes out: the answer may come at once
            intake.secrets.expect(update.effective_user.id)
        await set_conversation(session, person.id, TTE_PASS, ASKED,
                               {"run": run_id, "doc": doc_id, "version": doc.version},
                               message_id=query.message.message_id if query.message else None)
    await reply(update, t("tte.ask", version=doc.version), force_reply=True)


def _take_passphrase(update: Update, context: Context) -> str | None:
    """The passphrase of this message, from the intake's memory; None when the
    process restarted since it was stored (only the redacted text is left)."""
    from bot.core.secret_input import REDACTED

    intake = context.application.bot_data.get("intake")
    secret = intake.secrets.take(update.update_id) if intake is not None else None
    if secret is not None:
        return secret
    text = update.effective_message.text or ""
    if text == REDACTED:
        return None
    log.warning("passphrase message %s reached the handler unredacted",
                update.effective_message.message_id)
    return text


@text_route(TTE_PASS)
async def tte_passphrase(update: Update, context: Context, person: Person, conv) -> None:
    """The signer's passphrase: the message is deleted at once; this update only records
    a signature job (kind :data:`TTE_SIGNED`) and commits, the passphrase held in the
    process's memory for the job (never in its payload); the job
    (:func:`run_tte_job`) builds the numbered final PDF off the event loop, has the
    gateway sign it outside any transaction, and commits approval, number and final
    together, or nothing."""
    import secrets as random_tokens

    from telegram.error import NetworkError

    from bot.core.signing import gateway_nik

    msg = update.effective_message
    secret = _take_passphrase(update, context)
    try:
        await msg.delete()
    except (BadRequest, NetworkError):
        log.warning("could not delete the passphrase message %s", msg.message_id)
    if conv.state == SIGNING:  # a signature job is under way with the earlier one
        await reply(update, t("tte.busy"))
        return
    intake = context.application.bot_data.get("intake")
    if secret is None or intake is None:
        await reply(update, t("tte.lost"), force_reply=True)
        return
    if not secret.strip():
        await reply(update, t("tte.empty"), force_reply=True)
        return
    sv = services(context)
    if sv.gateway is None or not gateway_nik(sv.config, person.nip):
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        await reply(update, t("tte.no_nik", nip=person.nip or "-"))
        return
    progress = await reply(update, t("tte.signing"))
    run_id, doc_id = conv.data["run"], conv.data["doc"]
    nonce = random_tokens.token_hex(8)  # not secret: pairs the job with its memory
    try:
        async with transaction(context) as (session, wf):
            await _review_check(wf, person, run_id, doc_id)  # still to be signed
            busy = await open_job(session, run_id) is not None
            if not busy:
                # several processes: claimed by this one, whose memory holds the
                # passphrase (no other may take it while this one lives)
                mine = intake.me if intake.claims else None
                job = CompileJob(run_id=run_id, person_id=person.id, kind=TTE_SIGNED,
                                 payload={"doc": doc_id, "card": conv.message_id,
                                          "nonce": nonce, "holder": intake.me},
                                 chat_id=update.effective_chat.id,
                                 message_id=getattr(progress, "message_id", None),
                                 requested_at=wf.now, claimed_by=mine,
                                 claimed_at=wf.now if mine else None)
                session.add(job)
                await session.flush()
                await set_conversation(session, person.id, TTE_PASS, SIGNING,
                                       {**conv.data, "job": job.id})
                intake.secrets.hold(job.id, nonce, secret)  # memory only
    except (StaleAction, NotFound):  # signed or returned meanwhile
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        await _tell_progress(context.bot, update.effective_chat.id,
                             getattr(progress, "message_id", None), t("err.stale_button"))
        return
    finally:
        del secret
    if busy:
        await _tell_progress(context.bot, update.effective_chat.id,
                             getattr(progress, "message_id", None), t("tte.busy"))
        return
    compiler(context).wake()


class _WorkflowAt(Workflow):
    """A workflow whose clock stands at one moment: the signature job plans the final
    PDF (a dry run) and records it (the commit) at the moment the signer sent the
    passphrase, so the PDF shows exactly the approval, number date and step times that
    are recorded."""

    def __init__(self, session, sv, at) -> None:
        super().__init__(session, sv)
        self._at = at

    @property
    def now(self):
        return self._at


class _DryRun(Exception):
    """Ends the planning transaction of a signature job: rolled back, nothing written."""


async def run_tte_job(bot, sm, sv, job_id: int, *, wake=None, intake=None,
                      attempts: int = 3) -> Document | None:
    """A TTE signature job (step 8 with the Pemda's gateway). Its passphrase is in the
    memory of the process whose update recorded (and, with several processes, claimed)
    it (``intake.secrets``); when it is not in this process's memory, that process died
    or stopped before the job ran (or this one restarted): the job ends, nothing signed
    or numbered, and the signer is asked to press "Tandatangani" and type it again.
    Outcomes as before the job:
    a wrong passphrase asks again (nothing happened), a gateway that is down or refuses
    leaves the step open ("coba lagi nanti")."""
    from bot.core.signing import SigningError, WrongPassphrase, gateway_nik

    async with sm() as session:
        job = await session.get(CompileJob, job_id)
        if job is None or job.finished_at is not None:
            return None
        payload = dict(job.payload or {})
        person = await session.get(Person, job.person_id)
        nik = gateway_nik(sv.config, person.nip if person is not None else None)
    secrets = intake.secrets if intake is not None else None
    secret = secrets.held(job_id, payload.get("nonce")) if secrets is not None else None
    try:
        if secret is None:
            await _end_tte(bot, sm, sv, job_id, t("tte.lost_job"), wake=wake,
                           error="the passphrase is not in memory (recorded by "
                                 f"{payload.get('holder') or '?'})")
            return None
        if sv.gateway is None or not nik:
            await _end_tte(bot, sm, sv, job_id, t("tte.no_nik", nip=person.nip or "-"),
                           wake=wake)
            return None
        for _ in range(attempts):
            try:  # a new one-shot call each time: a build again signs again
                return await _tte_once(bot, sm, sv, job_id, sv.gateway.for_person(nik, secret),
                                       wake)
            except _Changed:
                continue
            except WrongPassphrase as exc:  # nothing happened: ask again
                await _end_tte(bot, sm, sv, job_id, t("tte.failed", reason=str(exc)),
                               ask_again=True, wake=wake)
                return None
            except SigningError as exc:  # gateway down, NIK unknown: the step stays open
                await _end_tte(bot, sm, sv, job_id, t("tte.failed", reason=str(exc)) + "\n"
                               + t("tte.try_later"), wake=wake)
                return None
            except (StaleAction, NotFound):  # signed or returned meanwhile
                await _end_tte(bot, sm, sv, job_id, t("err.stale_button"), wake=wake)
                return None
            except WorkflowError as exc:
                await _end_tte(bot, sm, sv, job_id, exc.message, wake=wake)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("TTE signature job %s failed", job_id)
                await _end_tte(bot, sm, sv, job_id, t("tte.error"), wake=wake,
                               error=f"{exc.__class__.__name__}")
                return None
        await _end_tte(bot, sm, sv, job_id, t("tte.error"), wake=wake,
                       error="changed meanwhile")
        return None
    finally:
        del secret
        if secrets is not None:
            secrets.forget(job_id)


async def _tte_once(bot, sm, sv, job_id: int, call, wake) -> Document | None:
    """One attempt: plan, build and sign, record.

    1. the indicator rows (the bulk of the data) in a read-only session;
    2. the plan in a dry run: approval and number as the commit will make them, at the
       moment the passphrase was sent, the final PDF's data read after them, and the
       transaction rolled back (on SQLite it holds the write lock for those queries
       only; the head printed is the committed one);
    3. the files built off the event loop and signed by the gateway, with no
       transaction open;
    4. approval, number (checked to be the one stamped, else :class:`_Changed` and the
       job plans, builds and signs again), final version, the message with its PDF and
       the job's mark, in one transaction."""
    from bot.core import audit, outbox
    from bot.core.documents import build_final, indicator_rows, plan_final, record_final

    async with sm() as session:  # read only: no lock held
        job = await session.get(CompileJob, job_id)
        if job is None or job.finished_at is not None:
            return None
        at, run_id, person_id = job.requested_at, job.run_id, job.person_id
        doc_id, card = (job.payload or {}).get("doc"), (job.payload or {}).get("card")
        chat_id, message_id = job.chat_id, job.message_id
        wf = Workflow(session, sv)
        cycle = await wf.get_cycle((await wf.get_run(run_id)).cycle_id)
        rows = await indicator_rows(wf, cycle)
    started = time.perf_counter()
    try:
        async with sm() as session, session.begin():
            wf = _WorkflowAt(session, sv, at)
            person = await session.get(Person, person_id)
            head = await audit.current_head(session)  # committed: stays in the chain
            new = await wf.approve(person, run_id, doc_id, numbered_now=True)
            letter = await wf.assign_number(person, new.id, at_signature=True)
            cycle = await wf.get_cycle(letter.cycle_id)
            plan = await plan_final(wf, cycle, letter, signer=call, audit_head=head,
                                    rows=rows)
            expected = (letter.number, letter.letter_date, letter.document_id)
            raise _DryRun()
    except _DryRun:
        pass
    planned = time.perf_counter()
    built = await build_final(sv.store, plan)  # the gateway signs: no transaction open
    signed = time.perf_counter()
    async with sm() as session:
        async with session.begin():
            if not await compile_jobs.claim(session, job_id):
                return None  # finished meanwhile
            wf = _WorkflowAt(session, sv, at)
            person = await session.get(Person, person_id)
            new = await wf.approve(person, run_id, doc_id, numbered_now=True)
            letter = await wf.assign_number(person, new.id, at_signature=True)
            if (letter.number, letter.letter_date, letter.document_id) != expected:
                raise _Changed()  # another number was given meanwhile
            cycle = await wf.get_cycle(letter.cycle_id)
            final = await record_final(wf, person, cycle, letter, plan, built)
            await compile_jobs.mark_built(session, job_id, sv.clock.now(), final.id)
            await _leave_tte(session, person_id, job_id)
            number = letter.number
            await outbox.enqueue(session, person, "final",
                                 t("tte.signed", number=number,
                                   date=format_date(letter.letter_date),
                                   code=final.verification_code),
                                 at=sv.clock.now(), files=[{"file_id": final.pdf_file_id,
                                                            "kind": "document"}],
                                 chat_id=chat_id)
    log.info("TTE signature job %s: planned in %.3f s (dry run), built and signed in "
             "%.2f s (no transaction), recorded in %.3f s", job_id, planned - started,
             signed - planned, time.perf_counter() - signed)
    if wake is not None:
        wake()
    await _tell_progress(bot, chat_id, message_id, t("tte.signing_done", number=number))
    await _close_card(bot, chat_id, {"card": card}, "")  # the card cannot be pressed again
    return final


async def _leave_tte(session, person_id: int, job_id: int, *, ask_again: bool = False) -> bool:
    """The signer's conversation, when it is still this job's: left, or (``ask_again``)
    back to waiting for the passphrase. False when the signer has moved on (/batal)."""
    conv = await get_conversation(session, person_id)
    if conv is None or conv.kind != TTE_PASS or (conv.data or {}).get("job") != job_id:
        return False
    if ask_again:
        data = {k: v for k, v in (conv.data or {}).items() if k != "job"}
        await set_conversation(session, person_id, TTE_PASS, ASKED, data)
    else:
        await clear_conversation(session, person_id)
    return True


async def _end_tte(bot, sm, sv, job_id: int, text: str, *, ask_again: bool = False,
                   wake=None, error: str = "") -> None:
    """The signature job ends with nothing signed or numbered: its mark and the signer's
    conversation (waiting for the passphrase again, with the question in the outbox,
    or left) commit together; then the progress message says why."""
    from bot.core import outbox

    async with sm() as session:
        async with session.begin():
            job = await compile_jobs.finish(session, job_id, sv.clock.now(), error or text)
            if job is None:
                return
            chat_id, message_id = job.chat_id, job.message_id
            if await _leave_tte(session, job.person_id, job_id, ask_again=ask_again) \
                    and ask_again:
                await outbox.enqueue(session, await session.get(Person, job.person_id),
                                     "tte_ask", t("tte.ask_again"), at=sv.clock.now(),
                                     force_reply=True, chat_id=chat_id)
    if wake is not None:
        wake()
    await _tell_progress(bot, chat_id, message_id, text)


async def _review_check(wf: Workflow, person: Person, run_id: int, doc_id: int) -> Document:
    """The card may be returned now: open review/sign run, its holder, current version."""
    run = await _open_run(wf, person, run_id, "review", "sign")
    doc = await wf.current_document(run.cycle_id)
    expected = (DocumentStatus.SUBMITTED if wf.sop.step(run.step_no).kind == "review"
                else DocumentStatus.INITIALLED)
    if doc is None or doc.id != doc_id or doc.status != expected:
        raise StaleAction()
    return doc


@action(Role.SEKRETARIS, Role.KADIS, callback=True)
async def return_press(update: Update, context: Context, person: Person, cb) -> str | None:
    query = update.callback_query
    async with transaction(context) as (session, wf):
        doc = await _review_check(wf, person, cb.arg(0), cb.arg(1))
        await set_conversation(session, person.id, RET_REASON, "reason",
                               {"run": cb.arg(0), "doc": cb.arg(1), "version": doc.version},
                               message_id=query.message.message_id if query.message else None)
    await reply(update, t("g.ask_reason", version=doc.version), force_reply=True)
    return None


@text_route(RET_REASON)
async def return_reason(update: Update, context: Context, person: Person, conv) -> None:
    reason = await typed_reason(update, MAX_REASON, "g.reason_length")
    if reason is None:
        return
    try:
        async with transaction(context) as (session, wf):
            new = await wf.return_documents(person, conv.data["run"], conv.data["doc"], reason)
            holder = await session.get(Person, new.assignee_id)
            await clear_conversation(session, person.id)
    except StaleAction:
        # the card was approved or returned meanwhile: leave the conversation
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        raise
    if conv.message_id:
        try:
            await context.bot.edit_message_reply_markup(
                chat_id=update.effective_chat.id, message_id=conv.message_id, reply_markup=None)
        except BadRequest:
            pass
    await reply(update, t("g.returned", version=conv.data.get("version", "-"),
                          name=holder.name, reason=reason))


# ------------------------------------------------------------------ step 9
@action(Role.STAF, callback=True)
async def number_press(update: Update, context: Context, person: Person, cb) -> str | None:
    """Records the numbering (a ``CompileJob`` of kind "numbered", committed with this
    update): the number is given, and the final version built, signed and recorded with
    it, in the background (:func:`run_compile_job`), so nobody waits for the build."""
    from bot.core.workflow import WrongState

    try:
        async with transaction(context) as (session, wf):
            run = await _open_run(wf, person, cb.arg(0), "number")
            cycle = await wf.get_cycle(run.cycle_id)
            doc = await wf.current_document(cycle.id)
            if doc is None or doc.status != DocumentStatus.SIGNED:
                raise WrongState(t("err.wrong_state", detail="dokumen belum ditandatangani."))
            period = wf.period(cycle)
            busy = await open_job(session, run.id) is not None
    except StaleAction:
        async with sessionmaker(context)() as session:
            run = await session.get(StepRun, cb.arg(0))
            letter = await Workflow(session, services(context)).letter_of(run.cycle_id) \
                if run else None
        if letter is None or letter.person_id != person.id:  # only to who numbered it
            raise
        await drop_buttons(update)
        return t("g.already_numbered", number=letter.number)
    if busy:
        return t("g.numbering_busy", period=period)
    progress = await reply(update, t("g.numbering", period=period))
    async with transaction(context) as (session, wf):
        run = await wf.get_run(cb.arg(0), lock=True)
        run = await _open_run(wf, person, run.id, "number")
        if await open_job(session, run.id) is None:
            session.add(CompileJob(run_id=run.id, person_id=person.id, kind=NUMBERED,
                                   payload=_card_of(update), chat_id=update.effective_chat.id,
                                   message_id=getattr(progress, "message_id", None),
                                   requested_at=wf.now))
            await session.flush()
    compiler(context).wake()
    return None


def _card_of(update: Update) -> dict:
    """The pressed card, kept with a numbering job: its id and its text (cut to leave
    room for the line the job adds when the number is given; see :func:`_close_card`)."""
    query = update.callback_query
    message = query.message if query else None
    if message is None:
        return {}
    html = None
    if message.text is not None:
        line = t("g.numbered_card", number="0" * 40, name="x" * 60, time="00-00-0000 00.00 WIB")
        room = render.TEXT_LIMIT - render.visible_length(line) - 4
        kept = render.split(message.text_html, room)
        html = kept[0] if len(kept) == 1 else kept[0] + "\n" + render.ELLIPSIS
    return {"card": message.message_id, "html": html}


# ------------------------------------------------------------------ step 10
@action(Role.KASUBAG, callback=True)
async def archive_press(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        new = await wf.archive(person, cb.arg(0))
        holder = await session.get(Person, new.assignee_id)
    await _edit_card(update, t("g.archived_card", name=person.name, time=_now_text(context)))
    await reply(update, t("g.archived", name=holder.name))
    return None


# ------------------------------------------------------------------ step 11
async def _delivery_for(wf: Workflow, person: Person, delivery_id: int) -> tuple[Delivery, StepRun]:
    delivery = await wf.s.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound()
    run = await wf.deliver_run(delivery.cycle_id)
    if delivery.status == DeliveryStatus.SENT:
        # sent, the agency's contact has not confirmed: whoever holds step 11 may record
        # the signed paper receipt, also after the sending (the run) is done
        step = wf.sop.step(run.step_no)
        cycle = await wf.get_cycle(delivery.cycle_id)
        if (step.kind != "deliver" or cycle.status != CycleStatus.ACTIVE
                or run.status not in (StepStatus.OPEN, StepStatus.DONE)):
            raise StaleAction()
        await wf._require_holder(run, person, step)
        return delivery, run
    run = await _open_run(wf, person, run.id, "deliver")
    if delivery.status != DeliveryStatus.PENDING:
        raise StaleAction()
    return delivery, run


async def _delivery_answer(update: Update, context: Context, person: Person, run_id: int,
                           head: str, receipt: StoredFile | None = None) -> None:
    """One message after a delivery action: what was done, the deliveries still pending
    with their buttons (the earlier such lists lose theirs), as the caption of the
    tanda terima PDF when there is one."""
    ref = f"run:{run_id}:list"
    buttons = None
    text = head
    async with transaction(context) as (session, wf):
        run = await wf.get_run(run_id)
        if run.status == StepStatus.OPEN:
            extra, buttons = await delivery_card(wf, run)
            text = f"{head}\n\n{t('g.deliveries_left')}{extra}"
            await wf.retire(ref)
        else:  # all sent: only the agencies' receipts are left
            waiting = [d.agency_name for d in await wf.deliveries(run.cycle_id)
                       if d.status == DeliveryStatus.SENT]
            if waiting:
                text = f"{head}\n\n{t('g.deliveries_all_sent', agencies=', '.join(waiting))}"
    msg = None
    if receipt is not None:
        doc = InputFile(services(context).store.read(receipt),
                        filename=receipt.filename or "tanda-terima.pdf")
        if render.visible_length(text) <= render.CAPTION_LIMIT:
            msg = await update.effective_chat.send_document(
                doc, caption=text, reply_markup=keyboard(render.labels(buttons)))
        else:
            await update.effective_chat.send_document(doc)
    if msg is None:
        msg = await reply(update, text, buttons)
    if buttons:
        async with transaction(context) as (session, wf):
            await record_sent(session, person, msg.chat_id, msg.message_id, ref=ref,
                              at=wf.now)


@action(Role.STAF, callback=True)
async def deliver_press(update: Update, context: Context, person: Person, cb) -> str | None:
    """"dlv:<delivery>": send to the agency's contact in the bot, or ask for the photo
    of the signed receipt."""
    async with transaction(context) as (session, wf):
        delivery, run = await _delivery_for(wf, person, cb.arg(0))
        contact = (await session.get(Person, delivery.contact_person_id)
                   if delivery.contact_person_id else None)
        if (delivery.status == DeliveryStatus.PENDING and contact is not None
                and contact.active):
            await wf.send_delivery(person, delivery.id)
        else:
            contact = None
            await set_conversation(session, person.id, RECEIPT, "photo",
                                   {"delivery": delivery.id, "run": run.id})
        agency = delivery.agency_name
    await drop_buttons(update)
    if contact is not None:
        await _delivery_answer(update, context, person, run.id,
                               t("g.delivery_sent", contact=contact.name, agency=agency))
    else:
        await reply(update, t("g.ask_receipt_photo", agency=agency,
                              default=TEXTS["g.receiver_default"].format(agency=agency)))
    return None


@file_route(RECEIPT)
async def receipt_photo(update: Update, context: Context, person: Person, conv) -> None:
    from handlers.data_entry import content_ok, type_allowed

    sv = services(context)
    doc = update.effective_message.document
    if doc is not None and (not (doc.file_name or "").lower().endswith(RECEIPT_TYPES)
                            or not type_allowed(doc.file_name, doc.mime_type)):
        await reply(update, t("g.receipt_photo_only"))
        return
    got = await download(update, context, sv.store.max_bytes)
    if got is None:
        await reply(update, t("g.receipt_photo_only"))
        return
    data, name, mime = got
    if not data or (doc is not None and not content_ok(name, data)):  # empty or mislabelled
        await reply(update, t("g.receipt_photo_only"))
        return
    caption = " ".join(typed_text(update.effective_message.caption).split())[:200]
    try:
        async with transaction(context) as (session, wf):
            delivery = await session.get(Delivery, conv.data["delivery"])
            if delivery is None:
                raise NotFound()
            received_by = caption or TEXTS["g.receiver_default"].format(
                agency=delivery.agency_name)
            stored = await sv.store.put(session, data, name, mime)
            delivery, receipt = await archive.record_receipt(
                wf, person, delivery.id, received_by=received_by, receipt_file_id=stored.id)
            await clear_conversation(session, person.id)
            agency = delivery.agency_name
    except StaleAction:
        # recorded meanwhile (or the step closed): leave the conversation
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        raise
    await _delivery_answer(update, context, person, conv.data["run"],
                           t("g.receipt_recorded", agency=agency, received_by=received_by),
                           receipt)


@text_route(RECEIPT)
async def receipt_text(update: Update, context: Context, person: Person, conv) -> None:
    await reply(update, t("g.receipt_photo_only"))


@action(Role.CONTACT, callback=True)
async def confirm_receipt(update: Update, context: Context, person: Person, cb) -> str | None:
    """"rcv:<delivery>": the agency's contact confirms they received the documents."""
    try:
        async with transaction(context) as (session, wf):
            await archive.record_receipt(wf, person, cb.arg(0))
    except StaleAction:
        async with sessionmaker(context)() as session:
            delivery = await session.get(Delivery, cb.arg(0))
        if (delivery is None or delivery.contact_person_id != person.id
                or delivery.status != DeliveryStatus.RECEIVED):
            raise
        await drop_buttons(update)
        return t("g.already_received")
    await _edit_card(update, t("g.receipt_confirmed", name=person.name, time=_now_text(context)))
    return None


# ------------------------------------------------------------------ /cek
def _as(name: str, capacity: str) -> Raw:
    """"Name selaku Plh. Kepala Dinas" (escaped), or the name alone."""
    return Raw(t("au.person_as", name=name, capacity=capacity) if capacity
               else render.esc(name))


def signature_text(check, recorded: str) -> Raw:
    """One line on the final PDF's PAdES signature, as the validator found it."""
    if check is None:
        return Raw(t("sig.unchecked", signature=recorded) if recorded else t("sig.none"))
    if not check.present:
        return Raw(t("sig.none"))
    if check.valid:
        return Raw(t("sig.valid", subject=check.signer, fingerprint=check.fingerprint))
    if check.intact and check.whole_file:
        return Raw(t("sig.untrusted", subject=check.signer, fingerprint=check.fingerprint))
    return Raw(t("sig.broken", detail=check.detail or "isi PDF berubah setelah ditandatangani"))


async def answer_code(update: Update, context: Context, typed: str) -> None:
    """The /cek answer for what was typed or scanned ("abcdefgh", "cek_ABCD-EFGH", ...)."""
    from bot.core.signing import trust_roots

    sv = services(context)
    async with sessionmaker(context)() as session:
        found = await verify_code(session, typed, store=sv.store,
                                  trust_roots=trust_roots(sv.config))
    if found is None:
        log.info("verification code not found: %r", typed)
        await reply(update, t("g.cek_not_found", code=typed.upper()))
        return
    doc_signature = ""
    async with sessionmaker(context)() as session:
        doc = await document_by_code(session, found["code"])
        doc_signature = doc.signature if doc is not None else ""
    await reply(update, t(
        "g.cek_genuine", code=found["code"], number=found["letter_number"] or "-",
        date=format_date(found["letter_date"]) if found["letter_date"] else "-",
        signer=_as(found["signer"], found["capacity"]),
        signed_at=format_wib(found["signed_at"]) if found["signed_at"] else "-",
        paraf=Raw(t("au.cek_paraf", paraf=Raw(", ".join(
            _as(i["name"], i["capacity"]) for i in found["initials"]))))
        if found["initials"] else "",
        approved_version=found["approved_version"] or "-",
        approved_sha256=found["approved_sha256"] or "-",
        version=found["version"], sha256=found["sha256"],
        signature=signature_text(found["signature"], doc_signature)))


async def check_code(update: Update, context: Context) -> None:
    """/cek KODE: anyone, registered or not, may check a document's verification code."""
    code = typed_text(" ".join(context.args) if context.args else "")[:40]
    if not code:
        await reply(update, t("g.cek_usage"))
        return
    await answer_code(update, context, code)


async def bare_code(update: Update, context: Context) -> None:
    """A verification code sent on its own (scanned or typed): verified, unless the
    person's conversation is waiting for a typed answer, which then gets it."""
    from bot.core.onboarding import person_with_conversation
    from handlers.common import TEXT_ROUTES, get_conversation, on_text

    async with sessionmaker(context)() as session:  # the person typed text goes to
        person = await person_with_conversation(session, update.effective_user.id)
        conv = await get_conversation(session, person.id) if person is not None else None
    if conv is not None and conv.kind in TEXT_ROUTES:
        await on_text(update, context)
        return
    await answer_code(update, context, typed_text(update.effective_message.text))


#: what a verification code looks like when sent on its own: "ABCD-EFGH", "abcdefgh",
#: "ABCD EFGH" (the alphabet has no 0, O, 1 or I)
BARE_CODE = r"(?i)^\s*[A-HJ-NP-Z2-9]{4}[\s-]?[A-HJ-NP-Z2-9]{4}\s*$"


def register(app) -> None:
    app.add_handler(CommandHandler("cek", check_code))
    # before the catch-all text handler (handlers/__init__.py registers it after us)
    app.add_handler(MessageHandler(filters.Regex(BARE_CODE) & filters.ChatType.PRIVATE
                                   & ~filters.COMMAND, bare_code))
    app.add_handler(CallbackQueryHandler(compile_press, pattern=callbacks.pattern("cmp")))
    app.add_handler(CallbackQueryHandler(submit_press, pattern=callbacks.pattern("subm")))
    app.add_handler(CallbackQueryHandler(approve_press, pattern=callbacks.pattern("prf", "sgn")))
    app.add_handler(CallbackQueryHandler(return_press, pattern=callbacks.pattern("ret")))
    app.add_handler(CallbackQueryHandler(number_press, pattern=callbacks.pattern("num")))
    app.add_handler(CallbackQueryHandler(archive_press, pattern=callbacks.pattern("arc")))
    app.add_handler(CallbackQueryHandler(deliver_press, pattern=callbacks.pattern("dlv")))
    app.add_handler(CallbackQueryHandler(confirm_receipt, pattern=callbacks.pattern("rcv")))

"""Step 8 through the TTE gateway off the update (issue 12 item 4, issue 16 item 3): the
update that carries the passphrase only records a signature job and commits; the job
builds the numbered final PDF off the event loop, calls the gateway with no transaction
open and commits approval, number and final together. Asserted by order, never by time:
the fake gateway holds the request while another person is answered and the database
(write lock, audit chain's head) is free. The passphrase lives in memory only: a process
that dies between recording and running the job leaves nothing signed and the Kadis is
asked to press "Tandatangani" again; a passphrase stored by another process before the
question's update committed is redacted before it is processed. Afterwards the
passphrase is in no table (inbox, compile_job, outbox, audit, ...), no call journal and
no log line."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest
from sqlalchemy import func, select

import handlers.signoff as signoff
import models
from bot.core.documents import compile_documents
from bot.core.secret_input import PASSPHRASE, REDACTED, SecretInput
from bot.core.signing import GatewaySigner, check_pdf
from bot.devtools.harness import TEST_TOKEN
from bot.telegram import processes
from bot.telegram.app import build_application
from models import AuditHead, CompileJob, Conversation
from models.enums import DocumentStatus, Role, StepStatus
from models.intake import Inbox
from tests.conftest import POSTGRES_URL
from tests.e2e import People, harness  # noqa: F401  (fixtures)
from tests.helpers import held_on_queue, spy_claimed_in_store
from tests.test_documents_service import drive_to_compile
from tests.test_e2e_signoff import has_button
from tests.test_signature_gateway import (  # noqa: F401  (the gateway, journaled fixtures)
    CLIENT, NEEDLE, NIK, SECRET, gateway, grep_files, journaled, state_of,
)
from tests.test_workflow import Walk

pytestmark = pytest.mark.timeout(600)

AGAIN = "Rahasia lain <b>&amp;</b> \"lagi\" 🔐"  # typed while the signature runs


async def to_signing(harness, sessionmaker, services, clock, gateway):  # noqa: F811
    """The example cycle compiled (workflow), submitted and initialled; the office signs
    through the gateway; returns (people, cycle id, the Kadis's step-8 card)."""
    people = await People(harness).load((Role.KADIS, None), (Role.STAF, "SEK"))
    kadis_person = people.person(Role.KADIS)
    services.config.signing.gateway_url = gateway["url"]
    services.config.signing.gateway_username, services.config.signing.gateway_password = CLIENT
    services.config.signing.gateway_nik = {kadis_person.nip: NIK}
    services.gateway = GatewaySigner(gateway["url"], *CLIENT)
    walk = Walk(sessionmaker, services, clock)
    cycle_id, run6 = await drive_to_compile(walk)
    kasubag, sek = await walk.who(Role.KASUBAG), await walk.who(Role.SEKRETARIS)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6, doc.id))
    clock.advance(minutes=5)
    await walk(lambda wf, s: wf.approve(sek, run7.id, doc.id))
    clock.advance(minutes=5)
    await harness.sender.drain()
    card8 = await people.user(Role.KADIS).wait_for(predicate=has_button("Tandatangani"))
    return people, cycle_id, card8


async def signature_job(sessionmaker) -> CompileJob | None:
    async with sessionmaker() as s:
        return (await s.execute(select(CompileJob).where(CompileJob.kind == "tte_signed")
                                .order_by(CompileJob.id.desc()))).scalars().first()


async def assert_kept_nowhere(sessionmaker, services, caplog, journaled, needles, *,
                              db_files=()) -> None:
    """No row of any table, no call-journal line, no stored file and no log record
    holds one of ``needles``; ``db_files``: database files whose every byte is checked
    too (SQLite)."""
    rows = []
    async with sessionmaker() as s:
        for table in models.Base.metadata.sorted_tables:
            rows += [f"{table.name}: {tuple(row)!r}"
                     for row in (await s.execute(select(table))).all()]
    dump = "\n".join(rows)
    assert "compile_job: " in dump and "[passphrase TTE" in dump, \
        "the dump must see the jobs and the inbox payloads"
    assert [line[:200] for line in rows if any(n in line for n in needles)] == []
    for path in db_files:
        assert not grep_files(path, needles), path
    assert journaled and not [line for line in journaled if any(n in line for n in needles)]
    assert grep_files(services.store.root, needles) == []
    assert caplog.records
    leaked = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records
              if any(n in r.getMessage() or n in repr(r.args) for n in needles)]
    assert leaked == []
    assert not any(n in caplog.text for n in needles)


async def test_the_passphrase_update_commits_before_the_gateway_is_called(
        harness, sessionmaker, services, clock, gateway, caplog, journaled,
        tmp_path):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    people, cycle_id, card8 = await to_signing(harness, sessionmaker, services, clock, gateway)
    kadis, staf = people.user(Role.KADIS), people.user(Role.STAF, "SEK")
    gateway["hold"] = asyncio.Event()

    q = await kadis.press(card8, text="Tandatangani")
    ask = await kadis.wait_for(after=q, text_contains="passphrase TTE")
    sent = await kadis.reply_to(ask, SECRET)
    progress = await kadis.wait_for(after=sent, text_contains="Menandatangani")
    await asyncio.wait_for(gateway["entered"].wait(), 120)  # the gateway has the request

    # while the gateway holds it: the passphrase's update is committed with its job
    await harness.committed()
    assert await harness.intake.pending() == 0
    job = await signature_job(sessionmaker)
    assert job.finished_at is None and job.document_id is None
    assert set(job.payload) == {"doc", "card", "nonce", "holder"}
    # several processes (PostgreSQL): claimed by the process that holds the passphrase
    assert job.claimed_by == (harness.intake.me if POSTGRES_URL else None)
    assert NEEDLE not in json.dumps(job.payload, ensure_ascii=False)
    async with sessionmaker() as s:
        conv = await s.get(Conversation, people.person(Role.KADIS).id)
        assert (conv.kind, conv.state, conv.data["job"]) == (PASSPHRASE, "signing", job.id)
        stored = (await s.execute(select(Inbox.payload).where(
            Inbox.processed_at.is_not(None)))).scalars().all()
        assert sum(p.get("message", {}).get("text") == REDACTED for p in stored) == 1
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs, len(docs)) == (0, 0, 1) and run8.status == StepStatus.OPEN

    # another person is answered, and a write transaction (the audit chain's head
    # locked, on SQLite the write lock) gets through at once
    asked = await staf.send_command("/bantuan")
    helped = await staf.wait_for(after=asked, timeout=60)
    await harness.committed()
    assert await harness.intake.pending() == 0
    async with asyncio.timeout(5):
        async with sessionmaker() as s, s.begin():
            head = (await s.execute(select(AuditHead).with_for_update())).scalar_one()
            assert head.count > 0
    # the Kadis types again meanwhile: deleted, redacted, told to wait, no second job
    extra = await kadis.send_text(AGAIN)
    wait = await kadis.wait_for(after=extra, text_contains="sedang ditandatangani")
    assert extra["message_id"] not in kadis._user_messages
    # and presses "Tandatangani" again: told to wait, still the same job's conversation
    q2 = await kadis.press(kadis.message(card8.message_id), text="Tandatangani")
    pressed = await kadis.wait_for(after=q2, text_contains="Dokumen ini sedang ditandatangani")
    await harness.committed()
    async with sessionmaker() as s:
        conv = await s.get(Conversation, people.person(Role.KADIS).id)
        assert (conv.state, conv.data["job"]) == ("signing", job.id)
    assert gateway["calls"] == 1 and not gateway["signed"]

    gateway["hold"].set()
    signed = await kadis.wait_for(after=sent, text_contains="ditandatangani secara elektronik",
                                  timeout=120)
    assert helped.seq < signed.seq and wait.seq < signed.seq and pressed.seq < signed.seq, \
        (helped.seq, wait.seq, pressed.seq, signed.seq)
    assert signed.document is not None and "050/1/" in signed.content
    done = await kadis.wait_for(after=sent, text_contains="Selesai: dokumen ditandatangani")
    assert done.message_id == progress.message_id
    await harness.settle()
    assert not kadis.message(card8.message_id).buttons
    final_pdf = harness.emulator.sent_files(kadis.chat_id)[-1]
    check = await check_pdf(final_pdf.data, [gateway["ca"]])
    assert check.valid and "BSrE Tiruan" in check.signer
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (1, 1) and run8.status == StepStatus.DONE
    assert docs[-1].status == DocumentStatus.NUMBERED and check.fingerprint in docs[-1].signature
    job = await signature_job(sessionmaker)
    assert (job.document_id, job.error) == (docs[-1].id, "") and job.finished_at is not None
    async with sessionmaker() as s:
        assert await s.get(Conversation, people.person(Role.KADIS).id) is None
        jobs = (await s.execute(select(func.count()).select_from(CompileJob))).scalar_one()
    assert jobs == 1 and gateway["signed"] == 1
    assert harness.intake.secrets.held(job.id, job.payload["nonce"]) is None  # forgotten
    await assert_kept_nowhere(sessionmaker, services, caplog, journaled,
                              [SECRET, NEEDLE, "Rahasia lain"],
                              db_files=() if POSTGRES_URL else sorted(tmp_path.glob("test.db*")))


async def test_a_restart_between_recording_and_running_signs_nothing_and_asks_again(
        harness, sessionmaker, services, clock, gateway, caplog, journaled, tmp_path,
        monkeypatch):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    people, cycle_id, card8 = await to_signing(harness, sessionmaker, services, clock, gateway)
    kadis = people.user(Role.KADIS)
    real = signoff.run_tte_job
    started = asyncio.Event()

    async def never_runs(*args, **kwargs):  # the process dies before the job runs
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(signoff, "run_tte_job", never_runs)
    q = await kadis.press(card8, text="Tandatangani")
    ask = await kadis.wait_for(after=q, text_contains="passphrase TTE")
    sent = await kadis.reply_to(ask, SECRET)
    await kadis.wait_for(after=sent, text_contains="Menandatangani")
    await asyncio.wait_for(started.wait(), 60)
    job = await signature_job(sessionmaker)
    assert job.finished_at is None and NEEDLE not in json.dumps(job.payload)
    await harness.stop_bot()

    # a new process (a new name; nothing of the old one's memory)
    monkeypatch.setattr(signoff, "run_tte_job", real)
    monkeypatch.setattr(processes, "_IDENTITY", None)
    await harness.start_bot()
    assert harness.intake.me != job.payload["holder"]
    lost = await kadis.wait_for(after=sent, text_contains="sebelum penandatanganan berjalan",
                                timeout=60)
    assert "Tandatangani" in lost.text
    await harness.settle()
    assert gateway["calls"] == 0  # nothing was sent to the gateway
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs, len(docs)) == (0, 0, 1) and run8.status == StepStatus.OPEN
    assert docs[-1].status == DocumentStatus.INITIALLED
    job = await signature_job(sessionmaker)
    assert job.finished_at is not None and job.document_id is None
    assert "not in memory" in job.error
    async with sessionmaker() as s:
        assert await s.get(Conversation, people.person(Role.KADIS).id) is None
    assert "Tandatangani" in kadis.message(card8.message_id).button_texts

    # pressed again, typed again: signed and numbered once
    q = await kadis.press(kadis.message(card8.message_id), text="Tandatangani")
    ask = await kadis.wait_for(after=q, text_contains="passphrase TTE")
    sent = await kadis.reply_to(ask, SECRET)
    signed = await kadis.wait_for(after=sent, text_contains="ditandatangani secara elektronik",
                                  timeout=120)
    assert "050/1/" in signed.content
    await harness.settle()
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (1, 1) and run8.status == StepStatus.DONE
    assert (gateway["calls"], gateway["signed"]) == (1, 1)
    await assert_kept_nowhere(sessionmaker, services, caplog, journaled, [SECRET, NEEDLE],
                              db_files=() if POSTGRES_URL else sorted(tmp_path.glob("test.db*")))


async def signed_once_from_a_redacted_row(h, sessionmaker, kadis, sent, answer_id, cycle_id,
                                          fake_gateway) -> None:
    """The passphrase ``sent`` signed the document once, its message was deleted in the
    chat, and its inbox row (``answer_id``) ends processed with the text redacted."""
    signed = await kadis.wait_for(after=sent, text_contains="ditandatangani secara elektronik",
                                  timeout=120)
    assert "050/1/" in signed.content
    assert sent["message_id"] not in kadis._user_messages  # deleted in the chat
    await h.settle()
    async with sessionmaker() as s:
        row = await s.get(Inbox, answer_id)
    assert row.processed_at is not None and row.error == ""
    assert row.payload["message"]["text"] == REDACTED
    numbers, signs, _docs, _run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (1, 1) and fake_gateway["signed"] == 1


async def test_a_passphrase_stored_by_another_process_before_the_ask_committed_is_redacted(
        harness, sessionmaker, services, clock, gateway, caplog, journaled):  # noqa: F811
    """The gap of one process per question: the Kadis answers while the update that asks
    is still uncommitted in one process, and another process (its own Services, no mark
    of the question in its memory) stores the answer: the database did not say "waiting"
    yet, so the text is stored as sent. Before the row is processed (after the asking
    update, in chat order) the processing process looks again, rewrites the row
    redacted and uses the text from its memory."""
    caplog.set_level(logging.DEBUG)
    people, cycle_id, card8 = await to_signing(harness, sessionmaker, services, clock, gateway)
    kadis = people.user(Role.KADIS)
    await harness.settle()
    await harness.stop_bot()
    q = await kadis.press(card8, text="Tandatangani")
    sent = await kadis.send_text(SECRET)
    updates = [u for u in harness.emulator._updates
               if (u.get("callback_query") or {}).get("id") == q
               or (u.get("message") or {}).get("message_id") == sent["message_id"]]
    assert len(updates) == 2
    from bot.core.services import build_services

    other = build_application(build_services(services.config, services.clock), sessionmaker,
                              token=TEST_TOKEN, base_url=harness.emulator.base_url)
    assert not other.bot_data["intake"].secrets.expected()
    for u in updates:
        assert await other.bot_data["intake"].store_json(json.loads(json.dumps(u))) == 1
    del other  # that process stored them and does not process them
    answer_id = updates[1]["update_id"]
    async with sessionmaker() as s:  # not recognised when stored: the gap
        assert (await s.get(Inbox, answer_id)).payload["message"]["text"] == SECRET

    await harness.start_bot()  # processes the question, then the answer
    await signed_once_from_a_redacted_row(harness, sessionmaker, kadis, sent, answer_id,
                                          cycle_id, gateway)
    assert any("redacted before processing" in r.getMessage() for r in caplog.records)
    assert harness.intake.secrets.take(answer_id) is None  # forgotten once processed
    # the rows, journals and logs (not the raw bytes of the SQLite file: the page the
    # first insert wrote may linger in the file or its WAL until it is overwritten)
    await assert_kept_nowhere(sessionmaker, services, caplog, journaled, [SECRET, NEEDLE])


async def test_a_passphrase_stored_with_the_press_that_asks_is_redacted_before_processing(
        harness, sessionmaker, services, clock, gateway, caplog, journaled):  # noqa: F811
    """One process: the Kadis presses "Tandatangani" and types the passphrase while the
    bot is down, so both come in one ``getUpdates`` and are stored together, before the
    press's handler asked: neither the mark nor the database says "waiting" yet, and
    the text is stored as sent. This process asks the Kadis when it processes the
    press, so before the text is processed it reads the database again and redacts
    the row (that read is left out only for a sender this process never asked)."""
    caplog.set_level(logging.DEBUG)
    people, cycle_id, card8 = await to_signing(harness, sessionmaker, services, clock, gateway)
    kadis = people.user(Role.KADIS)
    await harness.settle()
    await harness.stop_bot()
    await kadis.press(card8, text="Tandatangani")
    sent = await kadis.send_text(SECRET)
    answer_id = next(u["update_id"] for u in harness.emulator._updates
                     if (u.get("message") or {}).get("message_id") == sent["message_id"])
    await harness.start_bot()
    await signed_once_from_a_redacted_row(harness, sessionmaker, kadis, sent, answer_id,
                                          cycle_id, gateway)
    if not POSTGRES_URL:  # one process: stored as sent, then redacted before processing
        assert any("redacted before processing" in r.getMessage() for r in caplog.records)
    await assert_kept_nowhere(sessionmaker, services, caplog, journaled, [SECRET, NEEDLE])


async def test_a_passphrase_stored_while_the_press_that_asks_waits_on_its_queue_is_redacted(
        harness, sessionmaker, services, clock, gateway, caplog, journaled,  # noqa: F811
        monkeypatch):
    """The Kadis presses "Tandatangani" and types the passphrase before the press is
    processed: its update waits on the chat's queue in this process (held here), so
    nothing says "waiting" yet when the text is stored, and it is stored as sent. On
    PostgreSQL the store claims the text's row at once, behind the press on the chat's
    queue (``processes.claim_stored``); the press, processed first, asks in this
    process, so before the text is processed the database is read again and the row
    redacted: signed once, and the passphrase kept nowhere."""
    caplog.set_level(logging.DEBUG)
    people, cycle_id, card8 = await to_signing(harness, sessionmaker, services, clock, gateway)
    kadis = people.user(Role.KADIS)
    await harness.settle()
    intake = harness.intake
    claimed_in_store = spy_claimed_in_store(monkeypatch)
    async with held_on_queue(intake, lambda payload: "callback_query" in payload) as held:
        await kadis.press(card8, text="Tandatangani")
        await asyncio.wait_for(held.wait(), timeout=30)
        sent = await kadis.send_text(SECRET)
        answer_id = next(u["update_id"] for u in harness.emulator._updates
                         if (u.get("message") or {}).get("message_id") == sent["message_id"])
        row = None
        for _ in range(300):  # stored by the poller while the press is held
            async with sessionmaker() as s:
                row = await s.get(Inbox, answer_id)
            if row is not None:
                break
            await asyncio.sleep(0.1)
        assert row is not None and row.processed_at is None
        assert row.payload["message"]["text"] == SECRET  # nobody was asked yet
        if POSTGRES_URL:  # claimed in its store, behind the press on this process's queue
            assert answer_id in claimed_in_store and row.claimed_by == intake.me
    await signed_once_from_a_redacted_row(harness, sessionmaker, kadis, sent, answer_id,
                                          cycle_id, gateway)
    assert any("redacted before processing" in r.getMessage() for r in caplog.records)
    await assert_kept_nowhere(sessionmaker, services, caplog, journaled, [SECRET, NEEDLE])


def test_a_jobs_passphrase_is_found_only_with_its_nonce_and_forgotten():
    secrets = SecretInput()
    secrets.hold(7, "n-1", SECRET)
    assert secrets.held(7, "n-1") == SECRET
    assert secrets.held(7, "n-2") is None and secrets.held(7, None) is None
    assert secrets.held(8, "n-1") is None
    assert NEEDLE not in repr(secrets) and "1 for signature jobs" in repr(secrets)
    secrets.forget(7)
    assert secrets.held(7, "n-1") is None


def test_the_check_before_processing_sees_private_texts_only():
    base = {"message_id": 3, "from": {"id": 700001, "is_bot": False},
            "chat": {"id": 700001, "type": "private"}}
    candidate = SecretInput.candidate_payload
    assert candidate({"message": {**base, "text": SECRET}}) == 700001
    assert candidate({"message": {**base, "text": "/batal"}}) is None
    assert candidate({"message": {**base, "text": "/batal@sopbot_bot"}}) is None
    assert candidate({"message": {**base, "text": REDACTED}}) is None  # done already
    assert candidate({"message": {**base, "chat": {"id": -5, "type": "group"},
                                  "text": SECRET}}) is None
    assert candidate({"message": {**base, "photo": []}}) is None
    assert candidate({"callback_query": {"id": "1", "from": {"id": 700001}}}) is None


"""The outbox sender: paced, retried, and never sends a row twice, even with two
senders on one database (rows claimed with FOR UPDATE SKIP LOCKED on PostgreSQL)."""
from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import timedelta

import pytest

from sqlalchemy import select
from telegram.ext import ExtBot

from bot.devtools.emulator import BotApiEmulator, FaultPlan
from bot.devtools.harness import TEST_TOKEN
from bot.core.outbox import enqueue
from bot.telegram.outbox_sender import OutboxSender
from models import Office, Outbox, Person
from models.enums import OutboxStatus, Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)


async def _people_with_messages(sessionmaker, emu, clock, n: int, per_person: int = 1):
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab")
        s.add(office)
        await s.flush()
        for i in range(n):
            uid = 800_000 + i
            emu.add_user(user_id=uid, first_name=f"P{i}").started = True
            p = Person(office_id=office.id, name=f"P{i}", role=Role.STAF, telegram_user_id=uid)
            s.add(p)
            await s.flush()
            for k in range(per_person):
                await enqueue(s, p, "t", f"pesan {i}-{k}", at=clock.now())


async def _bot(emu):
    bot = ExtBot(TEST_TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url)
    await bot.initialize()
    return bot


def run_sender_process() -> None:
    """The body of one sender process (``python -c``): argv is the database URL, the
    emulator's two base URLs and a storage folder. Prints "ready", waits for "go" on
    stdin, delivers until no row is left pending, prints a JSON report."""
    import json
    import sys

    from bot.core.clock import SystemClock
    from bot.config import Config
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker

    db_url, base_url, base_file_url, storage = sys.argv[1:5]

    class MeetingSender(OutboxSender):
        """Holds its first claimed batch until the other process has claimed rows too,
        so both processes hold claims at the same time: the overlap the test is about
        happens on every run, however the two processes are scheduled."""

        met = False

        async def _claim(self):
            rows = await super()._claim()
            if rows and not self.met:
                self.met = True
                for _ in range(600):
                    async with self.sm() as s:
                        other = (await s.execute(select(Outbox.id).where(
                            Outbox.claimed_by != "",
                            ~Outbox.claimed_by.startswith(self.worker, autoescape=True))
                            .limit(1))).first()
                    if other is not None:
                        break
                    await asyncio.sleep(0.05)
            return rows

    async def main() -> dict:
        cfg = Config()
        cfg.database.url = db_url
        cfg.storage.path = storage
        cfg.outbox.rate_per_second = 10
        cfg.outbox.per_chat_interval_seconds = 0.01
        engine = make_engine(db_url)
        sm = make_sessionmaker(engine)
        bot = ExtBot(TEST_TOKEN, base_url=base_url, base_file_url=base_file_url)
        await bot.initialize()
        sender = MeetingSender(bot, sm, build_services(cfg, SystemClock()), batch=5)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for _ in range(2000):
            if await sender.deliver_once():
                continue
            async with sm() as s:  # rows of a chat whose earlier row the other one sends
                left = (await s.execute(select(Outbox.id).where(
                    Outbox.status == OutboxStatus.PENDING).limit(1))).first()
            if left is None:
                break
            await asyncio.sleep(0.05)
        await bot.shutdown()
        await engine.dispose()
        return {"pid": os.getpid(), "worker": sender.worker, "sent": sender.sent}

    print(json.dumps(asyncio.run(main())), flush=True)


async def test_two_senders_never_send_the_same_row(db_url, sessionmaker, clock, tmp_path):
    """Two OS processes, each with its own OutboxSender, on one database (SQLite file,
    or PostgreSQL with FOR UPDATE SKIP LOCKED) and one emulator over HTTP: both send,
    no row is sent twice, every row is sent, each chat in order."""
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        await _people_with_messages(sessionmaker, emu, clock, 40, per_person=2)
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "from tests.test_outbox_sender import run_sender_process; run_sender_process()",
            db_url, emu.base_url, emu.base_file_url, str(tmp_path / "files"), cwd=root,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE) for _ in range(2)]
        try:
            for p in procs:
                line = await asyncio.wait_for(p.stdout.readline(), 120)
                assert line == b"ready\n", (line, await p.stderr.read())
            for p in procs:
                p.stdin.write(b"go\n")
                await p.stdin.drain()
            results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        for p, (out, err) in zip(procs, results):
            assert p.returncode == 0, err.decode()[-3000:]
        reports = [json.loads(out.decode().splitlines()[-1]) for out, _ in results]
        assert len({r["pid"] for r in reports}) == 2

        # both processes sent, and together exactly the 80 rows, each once
        assert all(r["sent"] >= 1 for r in reports), reports
        assert sum(r["sent"] for r in reports) == 80, reports
        texts = [m.text for u in emu.users for m in u.messages]
        assert len(texts) == 80 and len(set(texts)) == 80
        for u in emu.users:  # per chat the order is kept
            assert [m.text for m in u.messages] == sorted(m.text for m in u.messages)
        async with sessionmaker() as s:
            rows = (await s.execute(select(Outbox))).scalars().all()
        assert len(rows) == 80
        for r in rows:  # claimed once, by one of the two, sent and recorded
            assert r.status == OutboxStatus.SENT and r.attempts == 1, r.last_error
            sent = [m for m in emu.user(r.chat_id).messages if m.text == r.payload["text"]]
            assert [m.message_id for m in sent] == [r.telegram_message_id]
        by_worker = Counter(next(rep["worker"] for rep in reports
                                 if r.claimed_by.startswith(rep["worker"] + ":"))
                            for r in rows)
        assert by_worker == {rep["worker"]: rep["sent"] for rep in reports}
        print(f"\ntwo sender processes: {' + '.join(str(r['sent']) for r in reports)} rows "
              f"of {len(rows)} sent, each once")


async def test_faults_are_retried_and_refusals_recorded(sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        await _people_with_messages(sessionmaker, emu, clock, 20)
        emu.users[0].block()
        emu.faults = FaultPlan(rate=0.3, kinds=("500", "502", "429"), seed=7, retry_after=1)
        bot = await _bot(emu)
        sender = OutboxSender(bot, sessionmaker, services)
        for _ in range(40):
            clock.advance(seconds=70)  # backoff and retry_after pass on the injected clock
            await sender.deliver_once()
            async with sessionmaker() as s:
                pending = (await s.execute(select(Outbox).where(
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))).scalars().all()
            if not pending:
                break
        async with sessionmaker() as s:
            rows = {r.chat_id: r for r in (await s.execute(select(Outbox))).scalars()}
        blocked = rows.pop(emu.users[0].chat_id)
        assert blocked.status == OutboxStatus.FAILED and "blocked" in blocked.last_error
        assert all(r.status == OutboxStatus.SENT for r in rows.values())
        assert sum(emu.stats.faults_injected.values()) > 0
        for u in emu.users[1:]:
            assert len([m for m in u.messages if m.text.startswith("pesan")]) == 1
        await bot.shutdown()


# ------------------------------------------------------------------ refusals (400)
# Telegram refuses a message with 400 for its content (bad HTML, too long, bad button
# data) or its chat. The sender sends it again in a safe form (plain text, in pieces);
# what cannot be delivered at all is marked failed with its reason and the office's
# admin is told. The rows below are enqueued directly, as a text builder with a bug
# would queue them; the emulator refuses them exactly as Telegram does.

HOSTILE = 'Sri <Rahayu> & "Ani" O\'Neil, S.E., M.M. 🌾 '
LONG_NAME = (HOSTILE * 4)[:120]


async def _html_bot(emu):
    """The bot as production builds it: HTML is the default parse mode."""
    from telegram.constants import ParseMode
    from telegram.ext import Defaults

    bot = ExtBot(TEST_TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url,
                 defaults=Defaults(parse_mode=ParseMode.HTML))
    await bot.initialize()
    return bot


async def _office_with(s, emu, *people):
    office = Office(name="Dinas Tenaga Kerja & Perindustrian <Lampung Barat>", regency="Kab")
    s.add(office)
    await s.flush()
    made = []
    for uid, role, name, started in people:
        if started is not None:
            emu.add_user(user_id=uid, first_name=name[:30]).started = started
        p = Person(office_id=office.id, name=name, role=role, telegram_user_id=uid)
        s.add(p)
        await s.flush()
        made.append(p)
    return made


def _queue_raw(s, person, kind: str, text: str, buttons=None, *, at) -> None:
    """A row as it stands in the outbox, bypassing ``enqueue``'s escaping and paging."""
    payload = {"text": text, **({"buttons": buttons} if buttons else {})}
    s.add(Outbox(person_id=person.id, chat_id=person.telegram_user_id, kind=kind,
                 payload=payload, created_at=at, next_attempt_at=at))


async def _deliver_all(sender, rounds: int = 10) -> None:
    for _ in range(rounds):
        if await sender.deliver_once() == 0:
            return


async def test_a_refused_message_is_sent_again_as_plain_text_in_pieces(
        sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    import html

    lines = [f"{i}. {LONG_NAME} ({i}): target Rp 1.234.567.890.123" for i in range(1, 61)]
    items = html.escape("\n".join(lines), quote=False)  # valid HTML, only too long
    bad_html = ("<b>Permintaan data</b>\nNilai <5% & naik >3 untuk "
                f"{HOSTILE}\nRealisasi Rp 1.234.567.890.123 &amp; selesai")
    cases = {
        "bad_html": (bad_html, [[["Isi data", "ent:1"]]]),
        "too_long": (f"<b>Permintaan data kinerja</b>\n{items}", [[["Isi data", "ent:2"]]]),
        "button_data": ("<b>Tugas baru</b>: langkah 2",
                        [[["Terima", "dsp:3"], ["Rusak", "x" * 65]]]),
    }
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        async with sessionmaker() as s, s.begin():
            people = await _office_with(
                s, emu, *[(810_000 + i, Role.STAF, f"{LONG_NAME[:100]} {i}", True)
                          for i in range(len(cases))])
            for p, (kind, (text, buttons)) in zip(people, cases.items()):
                _queue_raw(s, p, kind, text, buttons, at=clock.now())
        bot = await _html_bot(emu)
        sender = OutboxSender(bot, sessionmaker, services)
        await _deliver_all(sender)
        async with sessionmaker() as s:
            rows = {r.kind: r for r in (await s.execute(select(Outbox))).scalars()}
        users = dict(zip(cases, emu.users))

        # every row was delivered, and records the refusal that made it plain
        for kind, row in rows.items():
            assert row.status == OutboxStatus.SENT, (kind, row.last_error)
            assert "plain" in row.last_error, row.last_error
        assert "can't parse entities" in rows["bad_html"].last_error.lower()
        assert "too long" in rows["too_long"].last_error.lower()
        assert "button_data_invalid" in rows["button_data"].last_error.lower()

        # bad HTML: one plain message, tags stripped, entities decoded, data intact
        [msg] = users["bad_html"].messages
        assert msg.parse_mode is None
        assert msg.text == ("Permintaan data\nNilai <5% & naik >3 untuk "
                            f"{HOSTILE}\nRealisasi Rp 1.234.567.890.123 & selesai")
        assert msg.button_texts == ["Isi data"]

        # too long: pieces of at most 4,096 characters, cut at line ends, buttons on the
        # last piece only, nothing lost; the recorded id is the piece with the buttons
        msgs = users["too_long"].messages
        assert len(msgs) == 3  # 60 lines of about 160 characters
        assert all(len(m.text) <= 4096 and m.parse_mode is None for m in msgs)
        assert [m.button_texts for m in msgs] == [[], [], ["Isi data"]]
        assert "\n".join(m.text for m in msgs) == "Permintaan data kinerja\n" + "\n".join(lines)
        assert rows["too_long"].telegram_message_id == msgs[-1].message_id

        # invalid button data: the text with the valid button, and the way to /tugas
        [msg] = users["button_data"].messages
        assert msg.button_texts == ["Terima"] and msg.text.startswith("Tugas baru: langkah 2")
        assert "/tugas" in msg.text
        await bot.shutdown()


async def test_a_message_refused_in_every_form_is_failed_with_its_reason_and_the_admin_told(
        sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with BotApiEmulator(token=TEST_TOKEN) as emu:
        async with sessionmaker() as s, s.begin():
            # the staf never started the bot (chat not found); one admin reads the bot,
            # the other one has not started it either: their notice fails, silently
            staf, admin, absent_admin = await _office_with(
                s, emu, (820_001, Role.STAF, LONG_NAME, False),
                (820_002, Role.ADMIN, 'Admin <Dinas> & "TI" 🛠️', True),
                (820_003, Role.ADMIN, "Admin Cadangan", None))
            _queue_raw(s, staf, "step_opened", "<b>Tugas baru</b>: langkah 4",
                       [[["Mulai isi", "ent:9"]]], at=clock.now())
        bot = await _html_bot(emu)
        sender = OutboxSender(bot, sessionmaker, services)
        await _deliver_all(sender)
        async with sessionmaker() as s:
            rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
        card, *notices = rows
        assert card.status == OutboxStatus.FAILED
        assert "chat not found" in card.failed_reason.lower()
        # one notice per admin of the office; the one that failed is not reported again
        assert [(n.kind, n.person_id) for n in notices] == [
            ("outbox_failed", admin.id), ("outbox_failed", absent_admin.id)]
        assert [n.status for n in notices] == [OutboxStatus.SENT, OutboxStatus.FAILED]
        assert "chat not found" in notices[1].failed_reason.lower()
        [told] = emu.user(820_002).messages
        assert LONG_NAME in told.text  # whom it was for, escaped and shown as typed
        assert "Staf" in told.text and "chat not found" in told.text.lower()
        assert "Tugas baru: langkah 4" in told.text and "tidak terkirim" in told.text
        await bot.shutdown()


async def test_after_a_refused_card_tugas_gives_the_person_the_working_buttons(
        harness, people, sessionmaker):
    """The Sekretaris' disposition card (letter and "Terima" button) is refused by
    Telegram in every form: the row is failed with the reason, the admin is told whom it
    was for, and the Sekretaris' /tugas still opens the step with its working button."""
    async with sessionmaker() as s, s.begin():
        office_id = (await s.get(Person, people.person(Role.KADIS).id)).office_id
        admin = Person(office_id=office_id, name='Admin <TI> & "Data" 🛠️', role=Role.ADMIN)
        s.add(admin)
    admin_user = await harness.register(admin)
    kadis, sek = people.user(Role.KADIS), people.user(Role.SEKRETARIS)
    sek.started = False  # from now on Telegram answers "400 chat not found" to this chat

    sent = await kadis.send_command("/mulai")
    menu = await kadis.wait_for(after=sent, text_contains="Pilih periodenya")
    q = await kadis.press(menu, text="Triwulan III Tahun 2024")
    ask = await kadis.wait_for(after=q, text_contains="instruksi disposisi")
    sent = await kadis.reply_to(ask, "Siapkan pengukuran kinerja TW III <segera>")
    await kadis.wait_for(after=sent, text_contains="surat masuk")
    sent = await kadis.send_document(b"%PDF-1.4 surat masuk", "surat-masuk.pdf", "application/pdf")
    await kadis.wait_for(after=sent, text_contains="dimulai")

    notice = await admin_user.wait_for(text_contains="tidak terkirim")
    sek_name = people.person(Role.SEKRETARIS).name
    assert sek_name in notice.text and "Sekretaris" in notice.text
    assert "Disposisi dari" in notice.text and "chat not found" in notice.text.lower()
    await harness.settle()
    async with sessionmaker() as s:
        [card] = (await s.execute(select(Outbox).where(
            Outbox.person_id == people.person(Role.SEKRETARIS).id))).scalars().all()
    assert card.status == OutboxStatus.FAILED and "chat not found" in card.failed_reason.lower()
    assert not [m for m in sek.messages if "Disposisi" in (m.text or "")]

    # the Sekretaris writes to the bot again: /tugas lists the step, its button works
    sent = await sek.send_command("/tugas")
    tasks = await sek.wait_for(after=sent, text_contains="Tugas Anda")
    q = await sek.press(tasks, text="Buka langkah 2")
    opened = await sek.wait_for(after=q, text_contains="langkah 2")
    q = await sek.press(opened, text="Terima")
    ask = await sek.wait_for(after=q, text_contains="catatan disposisi")
    sent = await sek.reply_to(ask, "Mohon dikoordinasikan dengan semua bidang")
    await sek.wait_for(after=sent, text_contains="diteruskan")


# ------------------------------------------------------------------ priority and 429s
class RecordingBot:
    """A bot that records each send (its moment on the loop's clock, chat, text) and
    answers the first ``refuse`` sends with 429 retry_after ``retry``."""

    def __init__(self, refuse: int = 0, retry: int = 1) -> None:
        self.sends: list[tuple[float, int, str]] = []
        self.refused: list[tuple[float, int, str]] = []
        self.refuse, self.retry = refuse, retry

    async def send_message(self, chat_id, text, **_kw):
        from types import SimpleNamespace

        from telegram.error import RetryAfter

        now = asyncio.get_running_loop().time()
        if len(self.refused) < self.refuse:
            self.refused.append((now, chat_id, text))
            raise RetryAfter(self.retry)
        self.sends.append((now, chat_id, text))
        return SimpleNamespace(message_id=len(self.sends))


async def _staff(s, n: int, first_uid: int):
    office = Office(name="Dinas Tenaga Kerja & Perindustrian <Lampung Barat>", regency="Kab")
    s.add(office)
    await s.flush()
    people = []
    for i in range(n):
        p = Person(office_id=office.id, name=f"{LONG_NAME[:60]} {i}", role=Role.STAF,
                   telegram_user_id=first_uid + i)
        s.add(p)
        people.append(p)
    await s.flush()
    return people


async def test_replies_go_before_bulk_reminders_and_keep_their_own_order(
        sessionmaker, services, clock):
    from bot.core.outbox import BULK, REPLY

    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with sessionmaker() as s, s.begin():
        people = await _staff(s, 6, 910_000)
        for p in people:  # the reminder fan-out, queued first
            await enqueue(s, p, "reminder:due", f"Pengingat untuk {p.name}: Rp 1.250.000.000.000",
                          at=clock.now(), priority=BULK)
        asker, other = people[0], people[5]
        await enqueue(s, asker, "reply", f"Tersimpan 1 untuk {asker.name}", at=clock.now())
        await enqueue(s, other, "reply", f"Tersimpan untuk {other.name}", at=clock.now(),
                      priority=REPLY)
        await enqueue(s, asker, "reply", f"Tersimpan 2 untuk {asker.name}", at=clock.now())
    bot = RecordingBot()
    sender = OutboxSender(bot, sessionmaker, services)
    await _deliver_all(sender)
    texts = [text for _, _, text in bot.sends]
    assert len(texts) == 9
    # the replies queued after the whole fan-out go first (the asker's before the
    # reminder queued earlier to them); a reply never overtakes an earlier reply
    assert set(texts[:2]) == {f"Tersimpan 1 untuk {asker.name}", f"Tersimpan untuk {other.name}"}
    assert texts.index(f"Tersimpan 1 untuk {asker.name}") < texts.index(
        f"Tersimpan 2 untuk {asker.name}")
    assert all(t.startswith("Pengingat") for t in texts[2:] if "Tersimpan 2" not in t)
    reminders = [t for t in texts if t.startswith("Pengingat")]
    assert sorted(reminders) == sorted(f"Pengingat untuk {p.name}: Rp 1.250.000.000.000"
                                       for p in people)
    async with sessionmaker() as s:
        rows = (await s.execute(select(Outbox))).scalars().all()
    assert {r.priority for r in rows if r.kind == "reply"} == {REPLY}
    assert {r.priority for r in rows if r.kind != "reply"} == {BULK}
    assert all(r.status == OutboxStatus.SENT for r in rows)


async def test_pacer_lets_the_most_urgent_waiting_send_go_first():
    from bot.telegram.outbox_sender import Pacer

    pacer = Pacer(rate=1000, per_chat_interval=0.0)
    order: list[str] = []

    async def send(name: str, chat: int, priority: int) -> None:
        await pacer.wait(chat, priority)
        order.append(name)

    pacer.pause(0.2)  # everything below is waiting when the pause ends
    tasks = [asyncio.create_task(send(f"pengingat {i}", i, 0)) for i in range(5)]
    tasks.append(asyncio.create_task(send("balasan", 99, 1)))
    await asyncio.gather(*tasks)
    assert order == ["balasan"] + [f"pengingat {i}" for i in range(5)]


async def test_a_429_pauses_every_chat_for_its_retry_after(sessionmaker, services, clock):
    services.config.outbox.rate_per_second = 30
    services.config.outbox.per_chat_interval_seconds = 0.01
    async with sessionmaker() as s, s.begin():
        people = await _staff(s, 5, 920_000)
        for p in people:
            await enqueue(s, p, "reminder:due", f"Pengingat untuk {p.name} 🙂", at=clock.now())
    bot = RecordingBot(refuse=1, retry=1)
    sender = OutboxSender(bot, sessionmaker, services)
    await sender.deliver_once()
    (refused_at, refused_chat, _), = bot.refused
    # Telegram does not say which limit a 429 is for: no chat got anything inside it
    assert len(bot.sends) == 4 and refused_chat not in {c for _, c, _ in bot.sends}
    assert all(at >= refused_at + 1 for at, _, _ in bot.sends)
    async with sessionmaker() as s:
        row = (await s.execute(select(Outbox).where(Outbox.chat_id == refused_chat))).scalar_one()
    assert row.status == OutboxStatus.PENDING and row.last_error == "429 retry_after=1.0"
    assert row.next_attempt_at >= clock.now() + timedelta(seconds=1)
    clock.advance(seconds=1)
    await _deliver_all(sender)
    assert len(bot.sends) == 5 and bot.sends[-1][1] == refused_chat


async def test_the_rate_limiter_pauses_every_request_on_a_429():
    from telegram.error import RetryAfter

    from bot.telegram.ratelimit import RateLimiter

    limiter = RateLimiter(max_retries=3)
    loop = asyncio.get_running_loop()
    calls: list[tuple[float, int]] = []

    async def call(chat_id: int, refuse: bool):
        calls.append((loop.time(), chat_id))
        if refuse and len(calls) == 1:
            raise RetryAfter(1)
        return True

    async def request(chat_id: int, refuse: bool = False, retries: int | None = None):
        return await limiter.process_request(call, (chat_id, refuse), {}, "sendMessage",
                                             {"chat_id": chat_id}, retries)

    with pytest.raises(RetryAfter):  # rate_limit_args=0: the caller takes the 429 itself
        await request(930_001, refuse=True, retries=0)
    refused_at = calls[0][0]
    assert await request(930_002) and await request(930_003)  # other chats wait it out
    assert all(at >= refused_at + 1 for at, _ in calls[1:])
    assert await limiter.process_request(call, (0, False), {}, "getMe", {}, None)

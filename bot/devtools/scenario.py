"""A scripted SOP cycle played by simulated people, goal by goal.

Used by ``sopbot demo`` (bot in the same process, nothing goes wrong) and by the
reliability tests (bot in its own process killed with SIGKILL, or a Bot API that fails
on purpose). Every step of the script is a *goal* with a check against the database
("is step 7 done?", "is the answer for IND-05 saved?") and a *procedure* that a person
follows to reach it, starting from what they can see in their chat: the notification
card, or ``/tugas`` when the card is not there (yet). When no answer comes, the person
does what a person does: waits a little, then tries again from the start of that
procedure. The check makes a retry harmless: a goal already reached is not redone.

The people and their patience are a :class:`Player`: the demo's waits long and moves a
simulated clock; the crash test's notices that the bot was restarted and retries.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from sqlalchemy import func, select

from bot.devtools.emulator import BotMessage, EmulatorError, SimUser

log = logging.getLogger(__name__)

# what each bidang reports (the Bidang Perindustrian first sends a wrong investment figure)
ANSWERS: dict[str, list[tuple[str, str]]] = {
    "SEK": [("SEK-01", "BB"), ("SEK-02", "100"), ("SEK-03", "68,4"), ("SEK-04", "83,2"),
            ("SEK-05", "77,5")],
    "PPTK": [("PPTK-01", "4,05"), ("PPTK-02", "88,5"), ("PPTK-03", "64"), ("PPTK-04", "195"),
             ("PPTK-05", "26"), ("PPTK-06", "150")],
    "HIJS": [("HIJS-01", "100"), ("HIJS-02", "55"), ("HIJS-03", "41,3"), ("HIJS-04", "8"),
             ("HIJS-05", "31")],
    "IND": [("IND-01", "72"), ("IND-02", "2,4"), ("IND-03", "15"), ("IND-04", "21"),
            ("IND-05", "Rp 875.000.000")],
}
CORRECTION = ("IND-05", "Rp 8.750.000.000")
EVIDENCE = {"PPTK-02": "photo", "SEK-03": "pdf"}
HANDOVER = {"PPTK": "PPTK-04"}  # indicator a Kabid hands to a staf
NOTES: dict[str, str] = {}  # indicator -> a note ("Tambah catatan") typed after the answer
RECEIVED_BY = "Petugas Tata Usaha"  # the receiver typed as the caption of a receipt photo
# when each bidang answers (day of the month, hour) on the demo's simulated clock
SCHEDULE = {"PPTK": (8, 10), "HIJS": (8, 14), "SEK": (9, 9), "IND": (9, 11)}


def png(width: int = 64, height: int = 48) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\x30\x90\x50" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf(text: str) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.multi_cell(0, 8, text)
    return bytes(doc.output())


class NoAnswer(Exception):
    """The bot did not answer in time (the person will try again)."""


class Superseded(Exception):
    """The bot answered a press with "this button is no longer valid": a newer card
    replaced the one pressed (after a crash, a card Telegram showed but the bot never
    heard back about is sent again). The person goes on from what the chat shows now;
    not a retry: the bot did answer."""


class ScenarioFailed(AssertionError):
    pass


class Player:
    """How the simulated people wait, retry and see time pass (the demo's: patient,
    on a movable clock, no reason to retry)."""

    answer_wait = 20.0   # an answer to something the person just did
    notice_wait = 20.0   # a notification the person expects before opening /tugas
    slow_wait = 90.0     # compiling the documents, numbering
    max_attempts = 3
    retry_pause = 0.2
    # the bot answers before its transaction commits (bot/telegram/intake.py): after a procedure
    # got its answers, how long the goal's database check may take to come true
    commit_wait = 10.0

    def __init__(self, clock=None) -> None:
        self.clock = clock

    async def wait(self, user: SimUser, *, after=None, predicate=None,
                   text_contains: str | None = None, timeout: float | None = None
                   ) -> BotMessage:
        try:
            return await user.wait_for(predicate, text_contains=text_contains, after=after,
                                       timeout=timeout or self.answer_wait)
        except TimeoutError as exc:
            raise NoAnswer(str(exc)) from None

    def at(self, **delta) -> None:
        if self.clock is not None:
            self.clock.advance(**delta)

    def at_time(self, day: int, hour: int, minute: int = 0) -> None:
        if self.clock is None:
            return
        now = self.clock.now()
        target = now.replace(day=day, hour=hour, minute=minute, second=0, microsecond=0)
        if target > now:
            self.clock.set(target)

    def step(self, n: int, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def phase(self, name: str) -> None:
        """The script enters a phase (the crash test aims kills at some)."""

    def retried(self, goal: str, exc: BaseException) -> None:
        log.info("retrying %s after %s", goal, exc.__class__.__name__)

    def superseded(self, goal: str) -> None:
        log.info("%s: the pressed card was replaced by a newer one", goal)


def has_button(prefix: str) -> Callable[[BotMessage], bool]:
    return lambda m: any(b.get("callback_data", "").startswith(prefix) for b in m.buttons)


@dataclass
class ScriptedCycle:
    """One full cycle of the example office, goal by goal."""

    sessionmaker: object
    users: dict[int, SimUser]  # person id -> simulated user
    player: Player
    period: str                # the label of the period button, e.g. "Triwulan III Tahun 2024"
    retries: int = 0
    restarts_after_stale: int = 0  # procedures resumed after a "button no longer valid"
    confirmed: list[tuple[str, str]] = field(default_factory=list)  # ("Tersimpan") answers
    # the office's script; None: the example office's (ANSWERS, CORRECTION, ...)
    answers: dict[str, list[tuple[str, str]]] | None = None
    correction: tuple[str, str] | None = None
    evidence: dict[str, str] | None = None
    handover: dict[str, str] | None = None
    schedule: dict[str, tuple[int, int]] | None = None
    direct_cards: set[tuple[int, int]] = field(default_factory=set)  # (chat, msg) via /tugas
    # the office whose cycle is played (several offices on one bot: ``sopbot demo
    # --offices``); None: the database's only office
    office_id: int | None = None

    def __post_init__(self) -> None:
        self.answers = self.answers if self.answers is not None else ANSWERS
        self.correction = self.correction if self.correction is not None else CORRECTION
        self.evidence = self.evidence if self.evidence is not None else EVIDENCE
        self.handover = self.handover if self.handover is not None else HANDOVER
        self.schedule = self.schedule if self.schedule is not None else SCHEDULE

    @property
    def returned_unit(self) -> str:
        """The bidang the Kasubag returns once (the one with the correction)."""
        return self.correction[0].split("-")[0]

    # ------------------------------------------------------------------ database
    async def person(self, role, unit_code: str | None = None):
        from models import Person, Unit

        async with self.sessionmaker() as s:
            stmt = select(Person).where(Person.role == role, Person.active.is_(True))
            if self.office_id is not None:
                stmt = stmt.where(Person.office_id == self.office_id)
            if unit_code:
                stmt = stmt.join(Unit, Unit.id == Person.unit_id).where(Unit.code == unit_code)
            return (await s.execute(stmt.order_by(Person.id))).scalars().first()

    async def user(self, role, unit_code: str | None = None) -> tuple[SimUser, object]:
        p = await self.person(role, unit_code)
        return self.users[p.id], p

    async def scalar(self, stmt):
        async with self.sessionmaker() as s:
            return (await s.execute(stmt)).scalar()

    async def cycle_id(self) -> int | None:
        from models import Cycle

        stmt = select(Cycle.id)
        if self.office_id is not None:
            stmt = stmt.where(Cycle.office_id == self.office_id)
        return await self.scalar(stmt.order_by(Cycle.id.desc()).limit(1))

    async def secretariat(self) -> str:
        """The code of the Sekretariat (its staf numbers and delivers)."""
        from models import Unit

        stmt = select(Unit.code).where(Unit.is_secretariat.is_(True))
        if self.office_id is not None:
            stmt = stmt.where(Unit.office_id == self.office_id)
        return await self.scalar(stmt.order_by(Unit.id).limit(1))

    async def unit_id(self, code: str) -> int:
        from models import Unit

        stmt = select(Unit.id).where(Unit.code == code)
        if self.office_id is not None:
            stmt = stmt.where(Unit.office_id == self.office_id)
        return await self.scalar(stmt)

    async def latest_run(self, step_no: int, unit_code: str | None = None):
        from models import StepRun

        stmt = select(StepRun).where(StepRun.cycle_id == await self.cycle_id(),
                                     StepRun.step_no == step_no)
        if unit_code:
            stmt = stmt.where(StepRun.unit_id == await self.unit_id(unit_code))
        async with self.sessionmaker() as s:
            return (await s.execute(stmt.order_by(StepRun.id.desc()).limit(1))).scalars().first()

    async def step_done(self, step_no: int, unit_code: str | None = None, round_: int = 1) -> bool:
        from models.enums import StepStatus

        run = await self.latest_run(step_no, unit_code)
        return run is not None and run.round >= round_ and run.status in (
            StepStatus.DONE, StepStatus.RETURNED)

    async def saved(self, code: str) -> str | None:
        """The raw text of the latest answer for an indicator, None if none."""
        from models import Indicator, Submission

        return await self.scalar(
            select(Submission.raw_text).join(Indicator, Indicator.id == Submission.indicator_id)
            .where(Submission.cycle_id == await self.cycle_id(), Indicator.code == code,
                   Submission.skipped.is_(False))
            .order_by(Submission.id.desc()).limit(1))

    async def indicator_names(self) -> dict[str, str]:
        from models import Indicator

        stmt = select(Indicator.code, Indicator.name)
        if self.office_id is not None:
            stmt = stmt.where(Indicator.office_id == self.office_id)
        async with self.sessionmaker() as s:
            return {c: n for c, n in (await s.execute(stmt))}

    # ------------------------------------------------------------------ the person
    async def goal(self, name: str, done: Callable[[], Awaitable[bool]],
                   procedure: Callable[[], Awaitable[None]]) -> None:
        """Follow ``procedure`` until ``done``; a missing answer means: try again."""
        attempt = stale = 0
        while attempt < self.player.max_attempts:
            attempt += 1
            if await done():
                return
            try:
                await procedure()
            except Superseded:
                self.restarts_after_stale += 1
                self.player.superseded(name)
                stale += 1
                if stale <= 5:
                    attempt -= 1  # the bot answered: resuming from the chat is no retry
                continue
            except (NoAnswer, EmulatorError, StopIteration) as exc:
                self.retries += 1
                self.player.retried(name, exc)
                await asyncio.sleep(self.player.retry_pause)
                continue
            if await self._comes_true(done):
                return
        if not await done():
            raise ScenarioFailed(f"{name}: not reached after {self.player.max_attempts} attempts")

    async def _comes_true(self, done: Callable[[], Awaitable[bool]]) -> bool:
        """The person saw the answers; the bot commits right after answering."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.player.commit_wait
        while not await done():
            if loop.time() > end:
                return False
            await asyncio.sleep(0.05)
        return True

    async def press(self, user: SimUser, msg: BotMessage, text: str | None = None, *,
                    prefix: str | None = None, wait: str | None = None,
                    predicate=None, timeout: float | None = None) -> BotMessage | str:
        if prefix is not None:
            button = next((b for b in msg.buttons
                           if b.get("callback_data", "").startswith(prefix)), None)
            if button is None:
                raise EmulatorError(f"no button {prefix!r} on message {msg.message_id}")
            q = await user.press(msg, data=button["callback_data"])
        else:
            q = await user.press(msg, text=text)
        if wait is None and predicate is None:
            return q
        return await self.answer_to(user, q, text_contains=wait, predicate=predicate,
                                    timeout=timeout)

    async def answer_to(self, user: SimUser, query_id: str, *, text_contains=None,
                        predicate=None, timeout: float | None = None) -> BotMessage:
        """The bot's answer to a press: the awaited message, or :class:`Superseded` when
        the press was refused because a newer card replaced the pressed one."""
        from bot.texts import t

        stale = t("err.stale_button")
        wait = asyncio.ensure_future(self.player.wait(
            user, after=query_id, text_contains=text_contains, predicate=predicate,
            timeout=timeout))
        try:
            while not wait.done():
                answer = user.callback_answer(query_id)
                if answer is not None and answer.text == stale:
                    raise Superseded(f"press {query_id} refused: {stale}")
                await asyncio.wait({wait}, timeout=0.1)
            return wait.result()
        finally:
            if not wait.done():
                wait.cancel()

    def latest_with(self, user: SimUser, prefix: str) -> BotMessage | None:
        for msg in reversed(user.messages):
            if not msg.deleted and has_button(prefix)(msg):
                return msg
        return None

    async def card(self, user: SimUser, prefix: str, run_id: int) -> BotMessage:
        """The message with a ``prefix`` button: the notification card, else the card
        that ``/tugas`` opens."""
        found = self.latest_with(user, prefix)
        if found is not None:
            return found
        try:
            return await user.wait_for(has_button(prefix), timeout=self.player.notice_wait)
        except TimeoutError:
            pass
        sent = await user.send_command("/tugas")
        tasks = await self.player.wait(user, after=sent, predicate=lambda m: has_button(
            "task:")(m) or has_button(prefix)(m))
        if not has_button(prefix)(tasks):
            button = f"task:{run_id}"
            opened = await self.press(user, tasks, prefix=button, predicate=has_button(prefix))
            self.direct_cards.add((user.chat_id, opened.message_id))
            return opened
        return tasks

    # ------------------------------------------------------------------ registration
    async def register(self, person_id: int, code: str) -> None:
        from models import Person

        user = self.users[person_id]

        async def done() -> bool:
            return await self.scalar(select(Person.telegram_user_id)
                                     .where(Person.id == person_id)) is not None

        async def procedure() -> None:
            sent = await user.send_command("/start", code)
            await self.player.wait(user, after=sent, text_contains="Selamat datang")

        await self.goal(f"registration of person {person_id}", done, procedure)

    # ------------------------------------------------------------------ the cycle
    async def run(self) -> int:
        from models.enums import Role

        p = self.player
        # step 1
        p.phase("start")
        kadis, _ = await self.user(Role.KADIS)
        await self.goal("1 start", self._cycle_started, lambda: self._start(kadis))
        p.step(1, "Kadis memulai siklus dan mendisposisi Sekretaris")

        # step 2
        p.at(minutes=4)
        p.phase("dispose")
        sek, _ = await self.user(Role.SEKRETARIS)
        await self.goal("2 dispose", lambda: self.step_done(2), lambda: self._dispose(sek))
        p.step(2, "Sekretaris meneruskan disposisi kepada Kasubag Perencanaan")

        # step 3
        p.at(minutes=21)
        p.phase("coordinate")
        kasubag, _ = await self.user(Role.KASUBAG)
        await self.goal("3 coordinate", lambda: self.step_done(3),
                        lambda: self._coordinate(kasubag))
        p.step(3, f"Kasubag meminta data kepada {len(self.answers)} bidang "
                  "(tenggat 3 hari kerja)")

        # step 4: the four bidang answer, one with the help of a staf
        p.phase("data entry")
        for code, (day, hour) in self.schedule.items():
            p.at_time(day, hour)
            await self.enter_unit(code)
            p.note(f"bidang {code} mengirim data")
        # the Kasubag returns one bidang once (the Bidang Perindustrian: 5 -> 4)
        p.at_time(9, 13)
        p.phase("return")
        back = self.returned_unit
        await self.goal(f"4 return {back}", self._ind_returned, lambda: self._return(kasubag))
        p.note(f"Kasubag mengembalikan data bidang {back} (langkah 5 -> 4)")
        p.at_time(10, 9)
        await self.enter_unit(back, round_=2)
        p.step(4, "Semua bidang mengirim data kinerja (satu kali dikembalikan)")

        # step 5
        p.at_time(11, 10)
        p.phase("process")
        await self.goal("5 process", lambda: self.step_done(5),
                        lambda: self._simple(kasubag, 5, "proc:", "Pengolahan data selesai"))
        p.step(5, "Kasubag selesai mengolah data")

        # step 6
        p.at_time(14, 9)
        p.phase("compile")
        await self.goal("6 compile", lambda: self.step_done(6), lambda: self._compile(kasubag))
        p.step(6, "Kasubag menyusun dokumen (workbook, PDF, grafik) dan mengajukan paraf")

        # step 7
        p.at(minutes=8)
        p.phase("paraf")
        await self.goal("7 paraf", lambda: self.step_done(7),
                        lambda: self._simple(sek, 7, "prf:", None))
        p.step(7, "Sekretaris memaraf dokumen")

        # step 8
        p.at(minutes=7)
        p.phase("sign")
        await self.goal("8 sign", lambda: self.step_done(8),
                        lambda: self._simple(kadis, 8, "sgn:", None))
        p.step(8, "Kadis menandatangani dokumen")

        # step 9
        p.at(minutes=3)
        p.phase("number")
        staf, _ = await self.user(Role.STAF, await self.secretariat())
        await self.goal("9 number", lambda: self.step_done(9),
                        lambda: self._simple(staf, 9, "num:", "diberi nomor", slow=True))
        p.step(9, "Staf memberi nomor surat dari buku agenda")
        number = await self.letter_number()
        p.note(number or "")

        # step 10
        p.at(minutes=6)
        p.phase("archive")
        await self.goal("10 archive", lambda: self.step_done(10),
                        lambda: self._simple(kasubag, 10, "arc:", None))
        p.step(10, "Kasubag memeriksa dan mengarsipkan dokumen")

        # step 11
        p.at(minutes=2)
        p.phase("deliver")
        await self.deliver(staf)
        p.step(11, "Dokumen disampaikan; tanda terima dari 3 OPD tercatat")
        return await self.cycle_id()

    # ------------------------------------------------------------------ steps 1 - 3
    async def _cycle_started(self) -> bool:
        return await self.cycle_id() is not None

    async def _start(self, kadis: SimUser) -> None:
        sent = await kadis.send_command("/mulai")
        menu = await self.player.wait(kadis, after=sent, text_contains="Pilih periodenya")
        ask = await self.press(kadis, menu, self.period, wait="instruksi")
        sent = await kadis.reply_to(ask, f"Siapkan pengukuran kinerja {self.period} "
                                         "sesuai SOP; laporkan ke Bappeda dan Inspektorat.")
        await self.player.wait(kadis, after=sent, text_contains="surat masuk")
        sent = await kadis.send_document(
            pdf(f"DATA CONTOH - Surat masuk: permintaan laporan pengukuran kinerja {self.period}"),
            "surat-masuk-bappeda.pdf", "application/pdf")
        await self.player.wait(kadis, after=sent, text_contains="dimulai")

    async def _dispose(self, sek: SimUser) -> None:
        run = await self.latest_run(2)
        card = await self.card(sek, f"dsp:{run.id}", run.id)
        ask = await self.press(sek, card, prefix="dsp:", wait="catatan disposisi")
        sent = await sek.reply_to(ask, "Koordinasikan dengan semua bidang, tenggat 3 hari kerja.")
        await self.player.wait(sek, after=sent, text_contains="diteruskan")

    async def _coordinate(self, kasubag: SimUser) -> None:
        run = await self.latest_run(3)
        card = await self.card(kasubag, f"crd:{run.id}", run.id)
        coord = await self.press(kasubag, card, prefix="crd:", wait="Koordinasi bidang")
        if "3 hari kerja" not in coord.text:
            q = await kasubag.press(coord, text="3 hari")
            # the card, not the disposition letter (a file whose caption may say the
            # same words, arriving after the question)
            coord = await self.answer_to(kasubag, q,
                                           predicate=lambda m: m.text is not None and "3 hari kerja" in m.text)
        await self.press(kasubag, coord, "Kirim permintaan data", wait="Permintaan data dikirim")

    async def _ind_returned(self) -> bool:
        run = await self.latest_run(4, self.returned_unit)
        return run is not None and run.round >= 2

    async def _return(self, kasubag: SimUser) -> None:
        # the board may come in several messages: the buttons are on the last
        button = f"rtn:{await self.cycle_id()}:{await self.unit_id(self.returned_unit)}"
        sent = await kasubag.send_command("/status")
        board = await self.player.wait(kasubag, after=sent, predicate=has_button(button))
        ask = await self.press(kasubag, board, prefix=button, wait="alasan pengembalian")
        sent = await kasubag.reply_to(ask, "Nilai investasi tidak sesuai laporan DPMPTSP "
                                           "(kurang satu angka nol).")
        await self.player.wait(kasubag, after=sent, text_contains="dikembalikan kepada")

    async def _simple(self, user: SimUser, step_no: int, prefix: str, wait: str | None,
                      *, slow: bool = False) -> None:
        """Press the step's one button and wait for the answer (or the card's edit)."""
        run = await self.latest_run(step_no)
        card = await self.card(user, f"{prefix}{run.id}", run.id)
        q = await self.press(user, card, prefix=prefix)
        timeout = self.player.slow_wait if slow else None
        if wait is not None:
            await self.answer_to(user, q, text_contains=wait, timeout=timeout)
        else:  # the card is edited: its button is gone
            await self.answer_to(user, q, timeout=timeout, predicate=lambda m: (
                m.message_id == card.message_id and not has_button(prefix)(m)))

    async def _compile(self, kasubag: SimUser) -> None:
        run = await self.latest_run(6)
        ready = self.latest_with(kasubag, "subm:")
        if ready is None:
            card = await self.card(kasubag, f"cmp:{run.id}", run.id)
            q = await self.press(kasubag, card, prefix="cmp:")
            ready = await self.answer_to(kasubag, q, predicate=has_button("subm:"),
                                           timeout=self.player.slow_wait)
        q = await self.press(kasubag, ready, prefix="subm:")
        await self.answer_to(kasubag, q)

    async def letter_number(self) -> str | None:
        from models import LetterNumber

        return await self.scalar(select(LetterNumber.number)
                                 .where(LetterNumber.cycle_id == await self.cycle_id()))

    # ------------------------------------------------------------------ step 4
    async def enter_unit(self, code: str, round_: int = 1) -> None:
        """The Kabid (and a staf for one indicator) fills in the bidang's data and sends
        it to the Kasubag; state-driven, so a retry continues where the bot is."""
        from models.enums import Role

        kabid, _ = await self.user(Role.KABID, code)
        answers = dict(self.answers[code])
        if round_ > 1 and code == self.returned_unit:
            answers[self.correction[0]] = self.correction[1]
        await self.goal(f"4 data {code} round {round_}",
                        lambda: self.step_done(4, code, round_),
                        lambda: self._fill(kabid, code, answers, kabid=True))

    async def _open_entry(self, user: SimUser, run_id: int) -> BotMessage:
        prefix = f"ent:{run_id}"
        source = self.latest_with(user, prefix)
        if source is None:
            source = await self.card(user, prefix, run_id)
        return await self.press(user, source, prefix=prefix, predicate=is_entry_card)

    async def _fill(self, user: SimUser, code: str, answers: dict[str, str], *,
                    kabid: bool) -> None:
        from models import CycleIndicator, Indicator
        from models.enums import Role

        run = await self.latest_run(4, code)
        names = await self.indicator_names()
        handover = self.handover.get(code) if kabid else None
        card = await self._open_entry(user, run.id)
        for _ in range(60 + 4 * len(answers)):
            text = card.text or ""
            if "Ringkasan data" in text:
                finish = "esend:" if kabid else "edone:"
                if handover and await self.saved(handover) is None and await self.scalar(
                        select(CycleIndicator.assigned_to_id)
                        .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
                        .where(CycleIndicator.cycle_id == await self.cycle_id(),
                               Indicator.code == handover)):
                    # handed over and still unanswered: the staf first, then "Kirim"
                    await self._staff_fills(code, handover)
                    card = await self._open_entry(user, run.id)
                    continue
                if has_button(finish)(card):
                    await self.press(user, card, prefix=finish,
                                     wait="telah dikirim" if kabid else "Terima kasih")
                    return
                sent = await user.send_command("/batal")  # something is missing: start over
                await self.player.wait(user, after=sent)
                card = await self._open_entry(user, run.id)
                continue
            if has_button("eto:")(card):  # choose the staf (labels are shortened: by data)
                _, staf_person = await self.user(Role.STAF, code)
                to = next(b["callback_data"] for b in card.buttons
                          if b.get("callback_data", "").startswith("eto:")
                          and b["callback_data"].endswith(f":{staf_person.id}"))
                card = await self.press(user, card, prefix=to, wait="diserahkan kepada")
                continue
            if has_button("eassign:")(card):  # the handover list
                assigned = await self.scalar(
                    select(CycleIndicator.assigned_to_id)
                    .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
                    .where(CycleIndicator.cycle_id == await self.cycle_id(),
                           Indicator.code == handover)) if handover else None
                if handover and not assigned:
                    item_id = await self.scalar(
                        select(CycleIndicator.id)
                        .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
                        .where(CycleIndicator.cycle_id == await self.cycle_id(),
                               Indicator.code == handover))
                    card = await self.press(user, card, prefix=f"eassign:{run.id}:{item_id}",
                                            wait="Serahkan")
                    continue
                await self._staff_fills(code, handover)
                sent = await user.send_command("/batal")
                await self.player.wait(user, after=sent)
                card = await self._open_entry(user, run.id)
                continue
            now = next((c for c, name in names.items() if c in answers and name in text), None)
            if now is None:
                raise NoAnswer(f"unexpected card: {text[:80]!r}")
            if "Periksa kembali" in text:
                card = await self.press(user, card, "Ya, benar", predicate=is_entry_card)
                continue
            if "Tersimpan" in text or "Bukti diterima" in text:
                if "Tersimpan" in text:
                    self.confirmed.append((now, answers[now]))
                kind = self.evidence.get(now)
                if kind and "Bukti diterima" not in text:
                    card = await self._evidence(user, kind)
                    continue
                if now in NOTES:
                    card = await self._note(user, card, NOTES[now])
                card = await self.press(user, card, "Lanjut", predicate=is_next_card(card))
                continue
            # a question
            saved = await self.saved(now)
            if now == handover and saved is None:
                assigned = await self.scalar(
                    select(CycleIndicator.assigned_to_id)
                    .join(Indicator, Indicator.id == CycleIndicator.indicator_id)
                    .where(CycleIndicator.cycle_id == await self.cycle_id(),
                           Indicator.code == handover))
                if assigned:
                    await self._staff_fills(code, handover)
                    card = await self._open_entry(user, run.id)
                else:
                    card = await self.press(user, card, "Serahkan ke staf",
                                            wait="Pilih indikatornya")
                continue
            if saved == answers[now] and has_button("enext:")(card):
                card = await self.press(user, card, "Tetap", predicate=is_next_card(card))
                continue
            sent = await user.send_text(answers[now])
            card = await self.player.wait(user, after=sent, predicate=lambda m: is_entry_card(m)
                                          and ("Tersimpan" in m.content or "Periksa kembali"
                                               in m.content or "\u274C" in m.content))
        raise NoAnswer(f"data entry of {code} did not finish")

    async def _evidence(self, user: SimUser, kind: str) -> BotMessage:
        if kind == "photo":
            sent = await user.send_photo(png())
        else:
            sent = await user.send_document(pdf("DATA CONTOH - laporan realisasi anggaran"),
                                            "realisasi-anggaran.pdf", "application/pdf")
        return await self.player.wait(user, after=sent, text_contains="Bukti diterima")

    async def _note(self, user: SimUser, card: BotMessage, note: str) -> BotMessage:
        """"Tambah catatan" and the note typed; returns the card to go on from."""
        card = await self.press(user, card, "Tambah catatan", wait="Tulis catatan")
        sent = await user.send_text(note)
        return await self.player.wait(user, after=sent, text_contains="Catatan tersimpan")

    async def _staff_fills(self, code: str, handover: str) -> None:
        from models.enums import Role

        staf, _ = await self.user(Role.STAF, code)
        kabid, _ = await self.user(Role.KABID, code)

        async def done() -> bool:  # the staf pressed "Selesai": the Kabid is told
            from models import Outbox

            return await self.scalar(select(func.count(Outbox.id)).where(
                Outbox.kind == "staff_done", Outbox.chat_id == kabid.chat_id)) > 0

        await self.goal(f"4 staf {code}", done,
                        lambda: self._fill(staf, code,
                                           {handover: dict(self.answers[code])[handover]},
                                           kabid=False))
        self.player.note(f"staf bidang {code} mengisi indikator {handover}")

    # ------------------------------------------------------------------ step 11
    async def deliver(self, staf: SimUser) -> None:
        from models import Delivery
        from models.enums import DeliveryStatus, Role

        contact, _ = await self.user(Role.CONTACT)
        async with self.sessionmaker() as s:
            deliveries = (await s.execute(select(Delivery).where(
                Delivery.cycle_id == await self.cycle_id()).order_by(Delivery.id))).scalars().all()
        for d in deliveries:
            async def done(did=d.id) -> bool:
                return await self.scalar(select(Delivery.status).where(
                    Delivery.id == did)) == DeliveryStatus.RECEIVED

            await self.goal(f"11 deliver to {d.agency_name}", done,
                            lambda did=d.id, name=d.agency_name:
                            self._deliver_one(staf, contact, did, name))
        await self.goal("11 closed", self.cycle_closed, asyncio.sleep)

    async def _deliver_one(self, staf: SimUser, contact: SimUser, delivery_id: int,
                           agency: str) -> None:
        from models import Delivery
        from models.enums import DeliveryStatus

        status = await self.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        if status == DeliveryStatus.PENDING:
            run = await self.latest_run(11)
            task = await self.card(staf, f"task:{run.id}", run.id)
            # the answer to this press is the delivery card with this delivery's button;
            # the step's notification (its text names the OPD too) may arrive meanwhile
            opened = await self.press(staf, task, prefix=f"task:{run.id}",
                                      predicate=has_button(f"dlv:{delivery_id}"))
            self.direct_cards.add((staf.chat_id, opened.message_id))
            q = await self.press(staf, opened, prefix=f"dlv:{delivery_id}")
            await self.answer_to(staf, q)
            if "Bappeda" not in agency:
                self.player.at(minutes=2)
                sent = await staf.send_photo(png(80, 60), caption=RECEIVED_BY)
                await self.player.wait(staf, after=sent, text_contains="dicatat")
                return
        if "Bappeda" in agency:  # a registered contact confirms with a button
            confirm = self.latest_with(contact, "rcv:") or await self.player.wait(
                contact, predicate=lambda m: "Konfirmasi terima" in m.button_texts,
                timeout=self.player.notice_wait)
            self.player.at(minutes=2)
            q = await contact.press(confirm, text="Konfirmasi terima")
            await self.answer_to(contact, q)
        else:
            raise NoAnswer("the delivery was sent: the receipt is still missing")

    async def cycle_closed(self) -> bool:
        from models import Cycle
        from models.enums import CycleStatus

        return await self.scalar(select(Cycle.status).where(
            Cycle.id == await self.cycle_id())) == CycleStatus.CLOSED

    async def counts(self) -> dict[str, int]:
        from models import Submission

        return {"submissions": await self.scalar(select(func.count(Submission.id)))}


ENTRY_ACTIONS = ("eskip", "eback", "ecanc", "eok", "eno", "esum", "enext", "enote", "egoto",
                 "esend", "edone", "ehand", "eassign", "eto")


def is_entry_card(m: BotMessage) -> bool:
    return any(b.get("callback_data", "").split(":")[0] in ENTRY_ACTIONS for b in m.buttons)


def is_next_card(card: BotMessage) -> Callable[[BotMessage], bool]:
    """After "Lanjut"/"Tetap": the card changed to another question or the summary."""
    before = card.text

    def check(m: BotMessage) -> bool:
        return is_entry_card(m) and m.text != before and (
            "Ringkasan data" in m.text or ("Indikator " in m.text and " dari " in m.text
                                           and "Tersimpan" not in m.text))
    return check

"""One typed data-entry answer, through the real path (the emulator, the inbox, the
handlers), costs a bounded number of SQL statements: the person, their conversation and
what the handler needs are loaded once, and the handler's writes, the conversation, the
outbox rows and the inbox mark commit in the update's one transaction."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import event

from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import press_and_wait, subs, to_collection

LIMIT = 12
COMMIT = "-- commit"
# a transaction's BEGIN, counted from SQLAlchemy's ``begin`` event: the statement itself
# is not always seen as one (SQLite's BEGIN IMMEDIATE is tried on the raw connection,
# models.sqlite_driver.begin_immediate_here; asyncpg sends PostgreSQL's BEGIN itself)
BEGIN = "BEGIN"


class Statements:
    """Every statement the engine executes, with the DBAPI connection it ran on, and
    every transaction's BEGIN (once, however the driver sends it)."""

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.rows: list[tuple[int, str, object]] = []
        self.on = False

    def __enter__(self) -> "Statements":
        event.listen(self.engine, "before_cursor_execute", self._seen)
        event.listen(self.engine, "begin", self._began)
        event.listen(self.engine, "commit", self._committed)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)
        event.remove(self.engine, "begin", self._began)
        event.remove(self.engine, "commit", self._committed)

    def _seen(self, conn, _cursor, statement, parameters, _context, _many) -> None:
        if self.on and not statement.startswith("BEGIN"):  # counted by _began
            self.rows.append((id(conn.connection.dbapi_connection), statement, parameters))

    def _began(self, conn) -> None:
        if self.on:
            self.rows.append((id(conn.connection.dbapi_connection), BEGIN, None))

    def _committed(self, conn) -> None:
        if self.on:  # not a statement: where the transaction ends
            self.rows.append((id(conn.connection.dbapi_connection), COMMIT, None))

    def of_update(self) -> list[str]:
        """The statements of the one update processed meanwhile: on its connection, from
        the transaction's BEGIN (just before the claim of its inbox row) to its commit,
        the audit chain's statements at the commit included (after the statement that
        marks the update processed)."""
        claims = [i for i, (_c, sql, _p) in enumerate(self.rows)
                  if sql.startswith("UPDATE inbox SET error")]
        assert len(claims) == 1, [r[1] for r in self.rows]
        start = claims[0]
        conn = self.rows[start][0]
        assert start > 0 and self.rows[start - 1] == (conn, BEGIN, None), self.rows[:start]
        start -= 1
        mine = [sql for c, sql, _p in self.rows[start:] if c == conn]
        end = mine.index(COMMIT)
        assert any(sql.startswith("UPDATE inbox SET processed_at") for sql in mine[:end])
        return mine[:end]


async def test_one_typed_answer_runs_at_most_12_statements(
        harness, people, sessionmaker, engine):  # noqa: F811
    h = harness
    cycle_id = await to_collection(h, sessionmaker)
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari 6")
    await h.settle()
    # a first answer, so the one measured also carries the saved card's state over (and
    # the audit chain's head is as this process's last commit left it)
    sent = await kabid.send_text("12,5")
    card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
    card = await press_and_wait(kabid, card, "Lanjut", "Indikator 2 dari 6")
    await h.settle()

    with Statements(engine) as seen:
        seen.on = True
        sent = await kabid.send_text("87,5")
        card = await kabid.wait_for(after=sent, text_contains="Tersimpan")
        await h.settle()
        seen.on = False
    statements = seen.of_update()
    print(f"\none typed answer: {len(statements)} statements")
    for sql in statements:
        print("   ", " ".join(sql.split())[:400])
    # whether the sender waits for a TTE passphrase: read when the text is stored, not
    # again before it is processed (this process never asked them; on PostgreSQL the
    # store's claim of the row checked it once more in its own statement)
    waiting = [sql for _c, sql, _p in seen.rows if " ".join(sql.split()).startswith(
        "SELECT person.telegram_user_id FROM person JOIN conversation")]
    assert len(waiting) == 1, waiting
    [kel] = await subs(sessionmaker, cycle_id, "PPTK-02")
    assert kel.value == Decimal("87.5") and "87,5%" in card.text
    assert any(sql.startswith("INSERT INTO audit_log") for sql in statements), statements
    assert len(statements) <= LIMIT, statements


async def test_a_block_that_raises_runs_the_update_again_with_savepoints(
        harness, people, sessionmaker):  # noqa: F811
    """The first run opens no savepoints; a refusal leaving a block rolls back only that
    block's writes all the same (the update runs again with savepoints), and the reply
    made before the refusal is not sent twice (the journal answers it)."""
    from telegram.ext import TypeHandler

    from bot.core.workflow import NotAllowed
    from handlers.common import transaction
    from models import Conversation

    h = harness
    h.intake.split_calls = "never"  # the in-run path (the split one: test_intake_split.py)
    kadis = people.person(Role.KADIS)
    user = people.user(Role.KADIS)
    await h.settle()
    starts, ends = [], []
    text = "Uji <b>&amp;</b> \"tolak\" 🙂"

    async def handler(update, context):
        msg = update.effective_message
        if msg is None or msg.text != text:
            return
        starts.append(1)
        async with transaction(context) as (session, _wf):
            session.add(Conversation(person_id=kadis.id, kind="uji", state="a", data={}))
        await update.effective_chat.send_message("Sebelum penolakan: Rp 1.234.567.890.123")
        try:
            async with transaction(context) as (session, _wf):
                conv = await session.get(Conversation, kadis.id)
                conv.state = "b"
                await session.flush()
                raise NotAllowed()
        except NotAllowed:
            await update.effective_chat.send_message("Ditolak <i>sesuai aturan</i>")
        ends.append(1)

    h.app.add_handler(TypeHandler(object, handler), group=-5)
    sent = await user.send_text(text)
    await user.wait_for(after=sent, text_contains="Ditolak")
    await h.settle()
    assert starts == [1, 1] and ends == [1]  # the first run stopped at the refusal
    async with sessionmaker() as s:
        conv = await s.get(Conversation, kadis.id)
        assert conv is not None and conv.state == "a"  # block 1 kept, block 2 rolled back
    later = [m.text for m in user.messages if m.message_id > sent["message_id"]]
    assert later.count("Sebelum penolakan: Rp 1.234.567.890.123") == 1
    assert sum("Ditolak" in t for t in later) == 1
    assert h.intake.replayed >= 1

"""People in parallel, each in order (``bot/telegram/intake.py``): while one person's update is
held, another person's update is processed to the end; the held person's next update
waits behind the held one and runs after it.

Where the update is held depends on the database: on PostgreSQL inside the person's
handler (the update's transaction is open: updates of different people run their
transactions at once); on SQLite an update's transaction holds the one write lock from
its BEGIN IMMEDIATE to its commit, so updates take turns there, and the update is held
before its transaction (the person's queue is held, nobody else's)."""
from __future__ import annotations

import asyncio

from telegram.ext import TypeHandler

from models.enums import Role
from models.session import is_sqlite
from tests.e2e import harness, people  # noqa: F401  (fixtures)

HELD = "Tahan dulu <b>&amp;</b> \"kutip\" 🙂 " + "panjang " * 20


async def test_two_people_are_served_at_once_and_one_person_in_order(
        harness, people, config, monkeypatch):  # noqa: F811
    h = harness
    kadis, sek = people.user(Role.KADIS), people.user(Role.SEKRETARIS)
    await h.settle()
    gate, held = asyncio.Event(), asyncio.Event()
    seen: list[tuple[int, str]] = []  # (chat, text) as the handlers got them, in order

    async def record(update, _context):
        msg = update.effective_message
        text = msg.text if msg is not None else ""
        seen.append((update.effective_chat.id, text))
        if in_handler and text == HELD:
            held.set()
            await gate.wait()

    in_handler = not is_sqlite(config.database_url)
    h.app.add_handler(TypeHandler(object, record), group=-5)
    if not in_handler:
        real = h.intake._process

        async def process(update_id, payload, update=None):
            if payload.get("message", {}).get("text") == HELD:
                held.set()
                await gate.wait()
            return await real(update_id, payload, update)

        monkeypatch.setattr(h.intake, "_process", process)

    first = await kadis.send_text(HELD)
    await asyncio.wait_for(held.wait(), 15)
    second = await kadis.send_command("/bantuan")
    other = await sek.send_command("/bantuan")
    # the Sekretaris is answered, and their update committed, while the Kadis is held
    await sek.wait_for(after=other, text_contains="/tugas", timeout=15)
    for _ in range(500):
        if not h.intake.in_hand(sek.chat_id) and (sek.chat_id, "/bantuan") in seen:
            break
        await asyncio.sleep(0.01)
    assert (sek.chat_id, "/bantuan") in seen and not h.intake.in_hand(sek.chat_id)
    assert not [m for m in kadis.messages if m.message_id > first["message_id"]]
    assert (kadis.chat_id, "/bantuan") not in seen  # behind the held one
    assert h.intake.in_hand(kadis.chat_id)

    gate.set()
    reply1 = await kadis.wait_for(after=first, text_contains="tidak sedang menunggu", timeout=15)
    reply2 = await kadis.wait_for(after=reply1, text_contains="/tugas", timeout=15)
    await h.settle()
    assert reply1.message_id < reply2.message_id and "tidak sedang menunggu" not in reply2.text
    assert len([m for m in kadis.messages if m.message_id > first["message_id"]]) == 2
    # in this order (a run stopped at a Bot API call runs again: the handler may see an
    # update twice, bot/telegram/intake.py, never out of order)
    assert list(dict.fromkeys(t for c, t in seen if c == kadis.chat_id)) == [HELD, "/bantuan"]
    assert h.intake.max_concurrent > 1

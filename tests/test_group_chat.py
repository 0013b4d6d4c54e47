"""The bot works only in private chats: in a group it says so once (remembered across a
restart) and never acts or posts office data there, over the emulator."""
from __future__ import annotations

from sqlalchemy import select

from bot.core.onboarding import create_invitation
from bot.texts import t
from models import GroupChat, Person
from models.enums import Role
from tests.e2e import harness  # noqa: F401  (fixture)
from tests.helpers import person, snapshot

NOTICE = "hanya melayani percakapan pribadi"
BOOKKEEPING = ("group_chat",)


async def _snap(sm) -> dict:
    async with sm() as s:
        snap = await snapshot(s)
    for table in BOOKKEEPING:
        snap.pop(table, None)
    return snap


async def test_in_a_group_the_bot_says_once_that_it_works_only_in_private(harness):  # noqa: F811
    h = harness
    async with h.sessionmaker() as s:
        kadis = await person(s, Role.KADIS)
    kadis_user = await h.register(kadis)
    private_before = len(kadis_user.messages)
    group = h.emulator.add_group(-1001234567890, "Grup <Dinas> & \"Rapat\" \U0001F4CA",
                                 member=kadis_user)
    before = await _snap(h.sessionmaker)

    for command in ("/status", "/tugas", "/mulai", "/bantuan"):
        await group.send_command(command)
    await group.send_text("Indikator <b>TPT</b> 85,5 %")
    await h.settle()
    texts = [m.text for m in group.messages]
    assert len(texts) == 1 and NOTICE in texts[0], texts

    # a button pressed in the group (its data forged onto the notice) is refused
    notice = group.messages[0]
    notice.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": "task:1"}]]}
    query = await group.press(notice, data="task:1")
    await h.settle()
    answer = group.callback_answer(query)
    assert answer is not None and answer.text == t("err.private_only")

    # a restart does not repeat the notice: it is remembered in the database
    await h.restart_bot()
    await group.send_command("/tugas")
    await group.send_text("halo")
    await h.settle()
    assert len(group.messages) == 1, [m.text for m in group.messages]
    async with h.sessionmaker() as s:
        told = (await s.execute(select(GroupChat))).scalars().all()
    assert [(g.chat_id, g.chat_type) for g in told] == [(-1001234567890, "supergroup")]

    # nothing happened for the office, and the person's own chat got nothing
    assert await _snap(h.sessionmaker) == before
    assert len(kadis_user.messages) == private_before


async def test_an_invitation_code_sent_in_a_group_registers_nobody(harness):  # noqa: F811
    h = harness
    async with h.sessionmaker() as s, s.begin():
        staf = await person(s, Role.STAF, "PPTK")
        inv = await create_invitation(s, staf, now=h.services.clock.now(), valid_days=14)
    stranger = h.emulator.add_user(user_id=912_345, first_name="Tamu")
    group = h.emulator.add_group(-100777, "Grup Kantor", member=stranger, chat_type="group")
    await group.send_command("/start", inv.code)
    await h.settle()
    assert [NOTICE in (m.text or "") for m in group.messages] == [True]
    async with h.sessionmaker() as s:
        bound = (await s.execute(select(Person.telegram_user_id)
                                 .where(Person.id == staf.id))).scalar_one()
    assert bound is None
    assert stranger.messages == []

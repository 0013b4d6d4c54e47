"""Invitations: a one-time code binds a Telegram account; misuse changes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.onboarding import InvitationError, create_invitation, redeem
from bot.core.outbox import enqueue
from models import Outbox, Person
from models.enums import Role
from tests.helpers import person, snapshot


async def test_code_binds_once_and_releases_queued_messages(sessionmaker, office, clock):
    async with sessionmaker() as s, s.begin():
        kabid = await person(s, Role.KABID, "PPTK")
        inv = await create_invitation(s, kabid, now=clock.now(), valid_days=14)
        await enqueue(s, kabid, "test", "Halo", at=clock.now())
    async with sessionmaker() as s, s.begin():
        p = await redeem(s, inv.code, 555, now=clock.now())
        assert p.id == kabid.id
    async with sessionmaker() as s:
        assert (await s.get(Person, kabid.id)).telegram_user_id == 555
        row = (await s.execute(Outbox.__table__.select())).first()
        assert row.chat_id == 555
    for code, tg, reason in [(inv.code, 556, "used"), ("tidak-ada", 557, "unknown")]:
        async with sessionmaker() as s:
            before = await snapshot(s)
        with pytest.raises(InvitationError) as err:
            async with sessionmaker() as s, s.begin():
                await redeem(s, code, tg, now=clock.now())
        assert err.value.reason == reason
        async with sessionmaker() as s:
            assert await snapshot(s) == before


async def test_expired_and_replaced_codes_are_refused(sessionmaker, office, clock):
    async with sessionmaker() as s, s.begin():
        staf = await person(s, Role.STAF, "IND")
        first = await create_invitation(s, staf, now=clock.now(), valid_days=1)
        second = await create_invitation(s, staf, now=clock.now(), valid_days=1)
    with pytest.raises(InvitationError) as err:
        async with sessionmaker() as s, s.begin():
            await redeem(s, first.code, 10, now=clock.now() + timedelta(seconds=1))
    assert err.value.reason == "expired"
    with pytest.raises(InvitationError) as err:
        async with sessionmaker() as s, s.begin():
            await redeem(s, second.code, 10, now=clock.now() + timedelta(days=2))
    assert err.value.reason == "expired"

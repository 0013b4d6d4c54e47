"""Fixtures for end-to-end tests: the bot over real HTTP against the emulator."""
from __future__ import annotations

import pytest

from bot.devtools.harness import Harness
from models.enums import Role
from tests.helpers import person


@pytest.fixture
async def harness(services, sessionmaker, office):
    h = Harness(services, sessionmaker)
    await h.start()
    yield h
    await h.stop()


class People:
    """The example office's people, registered, as simulated users."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.by_key = {}

    async def load(self, *keys: tuple[Role, str | None]) -> "People":
        async with self.h.sessionmaker() as s:
            for role, unit_code in keys:
                p = await person(s, role, unit_code)
                self.by_key[(role, unit_code)] = p
        for p in self.by_key.values():
            await self.h.register(p)
        return self

    def user(self, role: Role, unit_code: str | None = None):
        return self.h.users[self.by_key[(role, unit_code)].id]

    def person(self, role: Role, unit_code: str | None = None):
        return self.by_key[(role, unit_code)]


FIVE_ROLES = [(Role.KADIS, None), (Role.SEKRETARIS, None), (Role.KASUBAG, None),
              (Role.KABID, "PPTK"), (Role.KABID, "IND"), (Role.STAF, "PPTK"), (Role.STAF, "SEK")]


@pytest.fixture
async def people(harness) -> People:
    return await People(harness).load(*FIVE_ROLES)

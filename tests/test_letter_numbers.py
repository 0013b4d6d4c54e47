"""The agenda register: 50 concurrent allocations are unique and gapless (the database
serialises them: a row lock on the year's counter)."""
from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.workflow import Workflow
from models import LetterCounter, LetterNumber, Office


async def test_fifty_concurrent_allocations_are_unique_and_gapless(sessionmaker, services, engine):
    async with sessionmaker() as s, s.begin():
        office = Office(name="Dinas", regency="Kab", unit_code="II.08")
        s.add(office)
    office_id = office.id

    async def allocate(i: int) -> str:
        for attempt in range(20):
            try:
                async with sessionmaker() as s, s.begin():
                    letter = await Workflow(s, services).allocate_number(
                        office_id, date(2024, 10, 14), subject=f"Surat {i}")
                    return letter.number
            except OperationalError:  # SQLite: "database is locked" under contention
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("allocation did not get through")

    numbers = await asyncio.gather(*(allocate(i) for i in range(50)))
    assert len(set(numbers)) == 50
    async with sessionmaker() as s:
        seqs = sorted((await s.execute(select(LetterNumber.sequence))).scalars())
        counter = (await s.execute(select(LetterCounter))).scalar_one()
    assert seqs == list(range(1, 51))
    assert counter.last_sequence == 50
    assert sorted(numbers, key=lambda n: int(n.split("/")[1])) == [
        f"050/{i}/KPTS/II.08/2024" for i in range(1, 51)]

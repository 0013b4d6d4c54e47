"""Shared fixtures: a database (SQLite, or PostgreSQL when SOPBOT_TEST_DATABASE_URL is
set), the services with a movable clock, and the example office."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

import models
from bot.core.clock import ManualClock
from bot.config import Config
from bot.devtools.example_data import example_office
from bot.core.office_data import apply_office
from bot.core.services import build_services
from models.session import is_sqlite, make_engine, make_sessionmaker

WIB = ZoneInfo("Asia/Jakarta")


def _worker_database(url: str) -> str:
    """Under pytest-xdist (``-n 4``) each worker has its own PostgreSQL database, named
    after the configured one (``test_gw0``, ``test_gw1``, ...): the tests drop and recreate
    the ``public`` schema, which workers must not do to each other."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker:
        return url
    base, _, name = url.rpartition("/")
    return f"{base}/{name}_{worker}"


POSTGRES_URL = _worker_database(os.environ.get("SOPBOT_TEST_DATABASE_URL", ""))


async def asyncpg_connect(url: str | None = None):
    """A plain asyncpg connection (no SQLAlchemy) to ``url``, by default this worker's
    database; asyncpg spells the scheme ``postgres://``."""
    import asyncpg

    return await asyncpg.connect((url or POSTGRES_URL).replace("postgresql://", "postgres://", 1))

# The tests that take the longest (each 15 s to 80 s on a quiet machine, `--durations`)
# run first: pytest-xdist hands tests out in collection order, and one of these started
# last kept one worker busy long after the others had finished.
LONGEST_FIRST = (
    "test_authorization.py::test_every_action_against_every_role",
    "test_demo.py::test_demo_runs_a_full_cycle_twice_from_a_clean_folder",
    "test_demo.py::test_demo_plays_three_offices_at_once",
    "test_e2e_signoff.py::test_signoff_numbering_archive_delivery_and_verification",
    "test_injection.py::test_formulas_typed_by_people_stay_text_in_every_file",
    "test_privacy.py::test_pegawai_signoff_and_files_reach_only_who_may_have_them",
    "test_signature.py::",  # the whole file: its tests share one demo (module fixture)
    "test_e2e_clean_chat.py::test_sign_request_receipts_and_no_dead_buttons",
    "test_signature_gateway.py::test_kadis_signs_through_the_tte_gateway",
    "test_off_loop.py::test_another_person_is_answered_while_a_large_office_compiles",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        for n, name in enumerate(LONGEST_FIRST):
            if name in item.nodeid:
                return n
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _calls_in_the_run(request, monkeypatch):
    """An update's run makes its Bot API calls inside its transaction, as it does against
    a local emulator on a quiet machine. Production's ``auto`` splits them off once the
    calls grow slower than the runs: on a loaded CI machine that turned a test of the
    in-run path into one of the split path halfway through. The split path's tests ask
    for it (``split_calls = "always"``, tests/test_intake_split.py);
    ``SOPBOT_SPLIT_CALLS`` set outside wins (a whole pass on the split path). The slow
    runs' bot processes keep ``auto``."""
    from bot.telegram.intake import SPLIT_ENV

    if request.node.get_closest_marker("slow") is None and not os.environ.get(SPLIT_ENV):
        monkeypatch.setenv(SPLIT_ENV, "never")


@pytest.fixture(scope="session", autouse=True)
def _worker_postgres_database():
    """Create this worker's database when it is missing (see :func:`_worker_database`)."""
    configured = os.environ.get("SOPBOT_TEST_DATABASE_URL", "")
    if not configured or POSTGRES_URL == configured:
        return
    import asyncio

    name = POSTGRES_URL.rpartition("/")[2]

    async def create() -> None:
        conn = await asyncpg_connect(configured)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return POSTGRES_URL or f"sqlite:///{tmp_path / 'test.db'}"


async def reset_schema(engine, url: str) -> None:
    async with engine.begin() as conn:
        if not is_sqlite(url):
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await conn.run_sync(models.Base.metadata.create_all)


@pytest.fixture
async def engine(db_url: str):
    eng = make_engine(db_url)
    await reset_schema(eng, db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    cfg = Config()
    cfg.base_dir = tmp_path
    cfg.database.url = db_url
    cfg.storage.path = str(tmp_path / "files")
    return cfg


@pytest.fixture
def clock() -> ManualClock:
    # Monday 7 October 2024, 08:00 WIB: the first working day after Triwulan III
    return ManualClock(wib(2024, 10, 7, 8, 0))


@pytest.fixture
def services(config: Config, clock: ManualClock):
    return build_services(config, clock)


@pytest.fixture
async def office(sessionmaker):
    async with sessionmaker() as session, session.begin():
        office = await apply_office(session, example_office(2024))
    return office

"""Engine and session factory. Plain URLs are accepted; the async driver is chosen here."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event, inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.util.concurrency import await_

from models import pg_driver, sqlite_driver
from models.statement_plan import NOT_HERE

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def async_url(url: str) -> str:
    """``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``; ``postgresql://`` -> asyncpg."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"database.url: jenis basis data '{backend}' tidak didukung")
    return u.set(drivername=ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


IMMEDIATE = "sopbot_begin_immediate"  # execution option: this transaction writes
# execution option (SQLite): the transaction's statements run on the event loop, not in
# the driver's thread (models.sqlite_driver.set_inline); session.info[INLINE] sets it
INLINE = "sopbot_inline"
# session.info: the SQLAlchemy Connection of the session's transaction, as last seen
# (its statements may run straight on SQLite: models.sqlite_driver.run_here)
CONNECTION = "sopbot_connection"
# how long a connection waits for another writer's lock
BUSY_TIMEOUT_MS = 30000


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # the driver emits no BEGIN of its own: ``_sqlite_begin`` does (SQLAlchemy's recipe
    # for pysqlite/aiosqlite), so a transaction that writes can begin IMMEDIATE
    dbapi_connection.isolation_level = None
    sqlite_driver.install(dbapi_connection)  # one trip to aiosqlite's thread a statement
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    """A transaction begun with ``session.begin()`` (``sessionmaker.begin()``) writes:
    it takes SQLite's write lock at its start (``BEGIN IMMEDIATE``; another writer waits
    up to the busy timeout there), so it never fails with "database is locked" when it
    reads first and writes later while another transaction committed meanwhile. A
    session that only reads (no explicit ``begin()``) begins DEFERRED and never waits
    for a writer (WAL)."""
    options = conn.get_execution_options()
    immediate, inline = options.get(IMMEDIATE, False), bool(options.get(INLINE))
    dbapi_connection = conn.connection.dbapi_connection
    if immediate and inline and sqlite_driver.begin_immediate_here(dbapi_connection,
                                                                   BUSY_TIMEOUT_MS):
        sqlite_driver.set_inline(dbapi_connection, True)
        return
    # an inline write transaction tries its BEGIN IMMEDIATE on the event loop first
    # (above: it fails at once where the lock is held); a BEGIN IMMEDIATE that may wait
    # for another writer (the busy timeout) runs in the driver's thread, never on the
    # event loop; a plain BEGIN waits for no one
    sqlite_driver.set_inline(dbapi_connection, inline and not immediate)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    sqlite_driver.set_inline(dbapi_connection, inline)


class WriteSession(Session):
    """On SQLite an explicit ``begin()`` takes the connection at once, marked as
    writing, so ``_sqlite_begin`` begins it IMMEDIATE. On PostgreSQL it takes the
    connection too (asyncpg begins the transaction at its first statement), so that the
    first Core statement already runs straight (:func:`models.pg_driver.run_here`)."""

    def begin(self, nested: bool = False):
        trans = super().begin(nested)
        if not nested and self.bind is not None:
            name = self.bind.dialect.name
            if name == "sqlite":
                self.info[CONNECTION] = self.connection(execution_options={
                    IMMEDIATE: True, INLINE: bool(self.info.get(INLINE))})
            elif name == "postgresql":
                self.info[CONNECTION] = self.connection()
        return trans


def _core(sync_session: Session, statement, params, rows: bool):
    if sync_session.autoflush:  # as the ORM's execute would: pending changes first
        sync_session.flush()
    connection = sync_session.connection()
    sync_session.info[CONNECTION] = connection
    result = connection.execute(statement, params)
    return result.all() if rows else result.rowcount


def _straight_connection(sync: Session):
    """The session's Connection, when its statements may run straight
    (:func:`models.sqlite_driver.run_here`, :func:`models.pg_driver.run_here` check the
    rest): its innermost transaction (a savepoint, if one is open) active, as the
    session's own execute requires (a savepoint that a failed flush rolled back refuses
    statements until it is rolled back by its owner), and holding the connection: a
    savepoint the session has begun is made on the connection (``SAVEPOINT``) only when
    its first statement asks the session for it, which the statement then does through
    SQLAlchemy."""
    connection = sync.info.get(CONNECTION)
    if connection is None:
        return None
    transaction = getattr(sync, "_transaction", None)
    if transaction is None or not transaction.is_active \
            or connection not in getattr(transaction, "_connections", ()):
        return None
    return connection


async def _run_core(session, statement, params, rows: bool):
    sync = session.sync_session
    connection = _straight_connection(sync)
    clean = getattr(sync, "_is_clean", None)
    if connection is not None and clean is not None:
        if sync.autoflush and not clean():
            await session.flush()
        if connection.dialect.name == "postgresql":
            done = await pg_driver.run_here(connection, statement, params, rows)
        else:
            done = sqlite_driver.run_here(connection, statement, params, rows)
        if done is not NOT_HERE:
            return done
    return await session.run_sync(_core, statement, params, rows)


def core_rows_sync(sync_session: Session, statement, params: dict | None = None, *,
                   rows: bool = True):
    """:func:`core_rows` (``rows``) or :func:`core_rowcount` for code that runs inside the
    session's own work (a ``before_commit`` listener: the audit chain's append), as
    ``sync_session.execute`` runs a Core statement (nothing flushed first), straight on
    SQLite in an inline transaction, and on PostgreSQL (awaited in the session's
    greenlet, where that work runs)."""
    connection = _straight_connection(sync_session)
    if connection is not None:
        if connection.dialect.name == "postgresql":
            done = await_(pg_driver.run_here(connection, statement, params, rows))
        else:
            done = sqlite_driver.run_here(connection, statement, params, rows)
        if done is not NOT_HERE:
            return done
    result = sync_session.execute(statement, params)
    return result.all() if rows else result.rowcount


async def core_rows(session, statement, params: dict | list | None = None) -> list:
    """The rows (indexed by position: tuples when run straight, SQLAlchemy's rows
    otherwise) of a Core statement (a select, or DML with RETURNING) run on
    the session's connection in its transaction, past the ORM's execute path: an
    update's point statements run that path's work (compile state, ORM result, events)
    for nothing, which costs about as much as the statement itself (about 30 against 60
    microseconds for a one-row select by key on SQLite). In an inline SQLite
    transaction the statement runs straight on the driver
    (:func:`models.sqlite_driver.run_here`: about 2 microseconds and the binding,
    against 35 through Core's execute path). Pending ORM changes are flushed first, as
    ``session.execute`` would."""
    return await _run_core(session, statement, params, True)


async def core_rowcount(session, statement, params: dict | list | None = None) -> int:
    """:func:`core_rows` for DML without RETURNING: the number of rows it matched."""
    return await _run_core(session, statement, params, False)


class _Loaded:
    """How a model's objects are made from its table's columns (:func:`core_objects`)."""

    __slots__ = ("mapper", "keys", "pk", "width")

    def __init__(self, model) -> None:
        self.mapper = mapper = sa_inspect(model)
        columns = list(mapper.local_table.c)
        self.keys = tuple(mapper.get_property_by_column(c).key for c in columns)
        self.pk = tuple(columns.index(c) for c in mapper.primary_key)
        self.width = len(columns)


_LOADED: dict[type, _Loaded] = {}


def _loaded(sync: Session, spec: _Loaded, values: tuple):
    """The object of this row, in the session as if loaded; the one the session holds
    already, if any (as a query keeps it: its unloaded or expired attributes are filled
    in, the rest is left as it is); None for a row that is not there (an outer join)."""
    pk = tuple(values[i] for i in spec.pk)
    if None in pk:
        return None
    key = spec.mapper.identity_key_from_primary_key(pk)
    held = sync.identity_map.get(key)
    if held is not None:
        state = sa_inspect(held)
        unloaded = state.unloaded
        if unloaded:
            for attr, value in zip(spec.keys, values):
                if attr in unloaded:
                    set_committed_value(held, attr, value)
        return held
    manager = spec.mapper.class_manager
    obj = manager.new_instance()
    obj.__dict__.update(zip(spec.keys, values))
    dispatch = sync.dispatch
    if manager.dispatch.load or dispatch.loaded_as_persistent \
            or dispatch.detached_to_persistent or dispatch.after_attach:
        make_transient_to_detached(obj)  # persistent with these values as loaded, the
        sync.add(obj)  # session's and the model's events told (none listens today)
        return obj
    # put in the session as the ORM's loading puts a new object in it
    # (sqlalchemy.orm.loading._instance): its key, the session's id and the identity
    # map; a fifth of make_transient_to_detached and Session.add
    state = instance_state(obj)
    state.key, state.identity_token = key, key[2]
    state.session_id = sync.hash_key
    sync.identity_map._add_unpresent(state, key)
    return obj


async def core_objects(session, statement, params: dict | None, *models) -> list[tuple]:
    """The rows of a Core select of whole tables (``select(A.__table__, B.__table__)``,
    joins and conditions as needed) as objects of ``models`` (one for each table, in
    order), put in the session as a query would load them: the statement runs as
    :func:`core_rows` runs it, and the objects are made from its columns. The ORM's
    loading of a row costs about twice the statement (a person with their
    conversation: 240 against 130 microseconds on SQLite). Only for plain mapped tables
    (no inheritance, no column of the table left unmapped); an object the session
    holds already is kept as it is, as a query keeps it. Columns after the tables' (a
    plain column added to the select) follow the objects in each tuple as they are."""
    specs = []
    for model in models:
        spec = _LOADED.get(model)
        if spec is None:
            spec = _LOADED[model] = _Loaded(model)
        specs.append(spec)
    sync = session.sync_session
    out = []
    for row in await core_rows(session, statement, params):
        objects, start = [], 0
        for spec in specs:
            objects.append(_loaded(sync, spec, row[start:start + spec.width]))
            start += spec.width
        out.append((*objects, *row[start:]))
    return out


def as_written(session, obj, *, inserted: bool = False) -> None:
    """``obj`` was just written with a Core statement (every changed column of it; or,
    ``inserted``, its whole new row, and it was added to the session with its key): the
    session keeps it as if its flush had written it. Its changes are cleared, so no later
    flush takes it up again (a changed object with nothing left to write still costs a
    flush about 80 microseconds), and the session's transaction is told, so that a
    rollback of the transaction, or of the savepoint it is in, expunges an inserted
    object and expires an updated one, as after a flush. SQLAlchemy's own bookkeeping,
    private (2.1): each step is taken where it is present; without them the object
    stays among the changed ones and a rollback keeps it as written."""
    sync = session.sync_session
    state = sa_inspect(obj)
    commit_all = getattr(state, "_commit_all", None)
    if commit_all is not None:
        commit_all(state.dict, sync.identity_map)
    transaction = getattr(sync, "_transaction", None)
    book = getattr(transaction, "_new" if inserted else "_dirty", None)
    if book is not None:
        book[state] = True


async def get(session, model, pk):
    """``session.get(model, pk)``; an object the session holds already (and has not
    expired) is taken from its identity map here, as ``Session.get`` would take it, without
    the trip through the async session's greenlet (an update asks for its conversation,
    cycle and run several times: about 40 microseconds each on that trip)."""
    sync = session.sync_session
    obj = sync.identity_map.get(sync.identity_key(model, pk))
    if obj is not None and not sa_inspect(obj).expired:
        return obj
    return await session.get(model, pk)


def prepare_sqlite_file(url: str) -> None:
    """A SQLite database file is private: created 0600 (its folder 0700 when this
    creates it) before SQLite opens it, so the -wal and -shm files SQLite makes beside
    it get the same 0600; an existing file and its -wal/-shm are set to 0600."""
    path = sqlite_path(url)
    if path is None:
        return
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            if p.exists():
                os.chmod(p, 0o600)
    except PermissionError:  # someone else's file: SQLite reports what it cannot do
        pass


#: PostgreSQL: the connections a process keeps (and at most opens). SQLAlchemy's default
#: (5 kept, 10 more opened and closed again) made a busy process connect and disconnect
#: for most updates (the updates in hand, the storing, the dispatch and the sender
#: together pass 5): a connection set-up (a round trip or more to the server) in an
#: update's time, and its CPU (connect + close were 2-3 % of a busy process's samples).
PG_POOL_SIZE = 15


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    prepare_sqlite_file(url)
    sqlite = is_sqlite(url)
    pool = {} if sqlite else {"pool_size": PG_POOL_SIZE, "max_overflow": 0}
    # SQLite: a connection is used from the event loop too (inline transactions), one
    # statement at a time (models.sqlite_driver)
    args = {"connect_args": {"check_same_thread": False}} if sqlite else {}
    engine = create_async_engine(async_url(url), echo=echo, **pool, **args)
    if sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=WriteSession)

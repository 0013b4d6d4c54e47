"""One hand-off to aiosqlite's thread per SQL statement.

SQLAlchemy's aiosqlite cursor hands each step of a statement to aiosqlite's thread and
waits for the event loop to be woken with its result: open a cursor, execute, fetch
the rows, close the cursor, four round trips between the threads per statement (each a
queue put, a thread switch, a ``call_soon_threadsafe`` and a wake of the event loop).
:class:`OneTripCursor` does the four steps in one function run in aiosqlite's thread
and keeps what SQLAlchemy reads afterwards (the description, the row count, the last
row id, the rows). The rows were fetched whole before too (a cursor that is not
server-side buffers them); server-side cursors (``stream()``) are left as they are.
Installed per connection by :func:`models.session.make_engine` (SQLite only).

**Inline transactions.** A trip still costs about as much CPU as a short statement
itself (the two threads and the event loop's wake). The intake's transactions (storing
an update, processing it, storing its card's id) are marked inline
(``session.info[models.session.INLINE]``, :func:`set_inline` at their begin): after
their ``BEGIN``, their statements, savepoints and commit run on the event loop's
thread, no trip. That is safe because nothing in them waits: the one statement that can
wait for another writer, ``BEGIN IMMEDIATE`` (up to the busy timeout), is tried on the
event loop with the busy timeout at 0 (:func:`begin_immediate_here`: it takes the free
lock at once, or fails at once) and waits in the thread only when another writer holds
the lock; after it the transaction holds SQLite's write lock, and in WAL mode neither
a reader nor the commit waits for anyone. An update's statements are short; the long
reads (a compile's data) are not in these transactions. Ending a connection's
transaction when none is open (the pool's rollback of a connection given back) makes
no trip either. The connection is opened with ``check_same_thread=False``: it is used
from the two threads, one statement at a time (SQLAlchemy awaits each call).

**Statements run straight.** In such a transaction, the Core statements an update runs
through :func:`models.session.core_rows` / ``core_rowcount`` skip SQLAlchemy's execute
path too (:func:`run_here`): compiled once per statement, bound and processed with the
statement's own type processors, run on the ``sqlite3`` connection, their errors raised
as SQLAlchemy's and the connection's execute events fired (the tests' statement counts,
the crash points see them). That path cost about 35 microseconds a statement against 2
for SQLite itself."""
from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy import exc
from sqlalchemy.dialects.sqlite.aiosqlite import (AsyncAdapt_aiosqlite_connection,
                                                  AsyncAdapt_aiosqlite_cursor)
from sqlalchemy.util.concurrency import await_

from models.statement_plan import (NOT_HERE, after_events, before_events, plan_for, processed,
                                   runs_as_is)


def _run(conn, operation: str, parameters, many: bool) -> tuple:
    """In aiosqlite's thread: the whole statement on a cursor of its own."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered aiosqlite cursor whose statement costs one trip to the driver's
    thread (see the module doc)."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # no driver cursor is kept between statements
        self._soft_closed_memoized = {}
        self._rows = collections.deque()
        self._description = None
        self._rowcount = -1
        self._lastrowid = None
        self._arraysize = 1

    @property
    def description(self):
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self):
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # the driver's cursor is closed already

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters=None) -> Any:
        try:
            if not self._inline(operation, parameters, False):
                await_(self._one_trip(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters) -> Any:
        try:
            if not self._inline(operation, seq_of_parameters, True):
                await_(self._one_trip(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def _inline(self, operation: str, parameters, many: bool) -> bool:
        """The statement run here, on the event loop, when this connection's
        transaction is marked inline (:func:`set_inline`) and nothing of it is in
        aiosqlite's thread; False: not run, it goes to the thread."""
        if not inline(self._adapt_connection) or self._adapt_connection._execute_mutex.locked():
            return False
        self._keep(_run(self._connection._conn, operation, parameters, many))
        return True

    async def _one_trip(self, operation: str, parameters, many: bool) -> None:
        connection = self._connection  # aiosqlite's Connection
        async with self._adapt_connection._execute_mutex:
            self._keep(await connection._execute(
                _run, connection._conn, operation, parameters, many))

    def _keep(self, result: tuple) -> None:
        """What SQLAlchemy reads after the statement (:func:`_run`'s result)."""
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)

    def nextset(self) -> None:
        return None  # SQLite has one result set per statement


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapted aiosqlite connection whose buffered cursors are
    :class:`OneTripCursor`; nothing else differs (no slot added: an adapted connection
    takes this class in place)."""

    __slots__ = ()
    _cursor_cls = OneTripCursor

    def commit(self) -> None:
        if not self._end_inline("commit"):
            super().commit()

    def rollback(self) -> None:
        if not self._end_inline("rollback"):
            super().rollback()

    def _end_inline(self, how: str) -> bool:
        """A transaction ends here, on the event loop, when it is inline (a COMMIT in
        WAL mode waits for no one), or when none is open (the pool's rollback of a
        connection given back: nothing to do, no trip to the thread); the mark goes.
        False: the thread ends it."""
        on = inline(self)
        set_inline(self, False)
        sqlite = self._connection._connection  # None once closed
        if sqlite is None or self._execute_mutex.locked():
            return False
        try:
            if not sqlite.in_transaction:
                return True
            if not on:
                return False
            getattr(sqlite, how)()
        except Exception as error:
            self._handle_exception(error)
        return True


def begin_immediate_here(dbapi_connection, busy_timeout_ms: int) -> bool:
    """``BEGIN IMMEDIATE`` on the event loop when SQLite's write lock is free, the usual
    case: no trip to aiosqlite's thread. The wait for a busy lock is not: the busy
    timeout is set to 0 for the attempt (and back after it), so a lock another
    connection holds makes it fail at once; then nothing has begun, and False says to
    wait for the lock in the thread as before."""
    driver = getattr(dbapi_connection, "_connection", None)
    if type(dbapi_connection) is not OneTripConnection or driver is None \
            or dbapi_connection._execute_mutex.locked():
        return False
    sqlite = driver._connection  # None once closed
    if sqlite is None or sqlite.in_transaction:
        return False
    sqlite.execute("PRAGMA busy_timeout = 0")
    try:
        sqlite.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError:  # locked: waited for in the thread
        return False
    finally:
        sqlite.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")


_INLINE = "_sopbot_inline"  # on aiosqlite's Connection (the adapter has slots only)


def set_inline(dbapi_connection, on: bool) -> None:
    """Mark the transaction just begun on this adapted connection: its statements and
    its end run on the event loop, not in aiosqlite's thread. Only for a transaction
    whose statements never wait for a lock: a write transaction after its ``BEGIN
    IMMEDIATE`` (which waits in the thread, up to the busy timeout), or a read (WAL:
    readers never wait), and whose statements are short (an update's)."""
    driver = getattr(dbapi_connection, "_connection", None)
    if type(dbapi_connection) is OneTripConnection and driver is not None:
        setattr(driver, _INLINE, on)


def inline(dbapi_connection) -> bool:
    return getattr(dbapi_connection._connection, _INLINE, False)


def install(dbapi_connection) -> None:
    """Give this adapted aiosqlite connection (the ``connect`` event's) one trip per
    statement; any other connection is left alone."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection and _fits(dbapi_connection):
        dbapi_connection.__class__ = OneTripConnection


def _fits(dbapi_connection) -> bool:
    """The adapter and the driver have what :class:`OneTripCursor` uses (SQLAlchemy
    2.1's aiosqlite adapter, aiosqlite below 0.22); another version keeps SQLAlchemy's
    own cursor rather than fail."""
    driver = getattr(dbapi_connection, "_connection", None)
    return (hasattr(dbapi_connection, "_execute_mutex")
            and hasattr(dbapi_connection, "_handle_exception")
            and callable(getattr(driver, "_execute", None))
            and hasattr(driver, "_conn"))


# ------------------------------------------------------------------ statements run here
def run_here(connection, statement, params, rows: bool):
    """A Core statement of an inline transaction (``connection``: the session's
    SQLAlchemy ``Connection``) run on the event loop straight on SQLite, past
    SQLAlchemy's execute path: compiled once (:func:`models.statement_plan.plan_of`),
    its parameters bound and its rows processed with the statement's own type
    processors, its errors raised as SQLAlchemy's, the connection's execute events
    fired (the statement counts, the crash points). That path costs about 20 times the
    statement itself for an update's short statements. Answers ``rows`` (tuples) or the
    row count; :data:`NOT_HERE` when the transaction is not inline or the statement
    needs the execution context (Python-side defaults, several parameter sets):
    SQLAlchemy runs it."""
    if not runs_as_is(connection):
        return NOT_HERE
    adapted = connection.connection.dbapi_connection
    if type(adapted) is not OneTripConnection or not inline(adapted) \
            or adapted._execute_mutex.locked():
        return NOT_HERE
    sqlite = adapted._connection._connection
    if sqlite is None or not sqlite.in_transaction:
        return NOT_HERE
    dialect = connection.dialect
    planned = plan_for(statement, params, dialect)
    if planned is None:
        return NOT_HERE
    plan, params = planned
    sql, args = plan.sql, params
    try:
        sql, args = plan.bound(params)
        events = before_events(connection, statement, params, sql, args)
        cursor = sqlite.execute(sql, args)
        if rows:
            out = cursor.fetchall()
            if plan.results:
                out = [processed(row, plan.results) for row in out]
        else:
            if cursor.description is not None:  # RETURNING: counted once stepped through
                cursor.fetchall()
            out = cursor.rowcount
        cursor.close()
    except Exception as error:  # as SQLAlchemy raises it: a DBAPIError, else a StatementError
        raise exc.DBAPIError.instance(sql, args, error, sqlite3.Error,
                                      dialect=dialect) from error
    if events:
        after_events(connection, statement, params, sql, args)
    return out

"""One hand-off to aiosqlite's thread per SQL statement.

SQLAlchemy's aiosqlite cursor hands each step of a statement to aiosqlite's thread and
waits for the event loop to be woken with its result: open a cursor, execute, fetch
the rows, close the cursor, four round trips between the threads per statement (each a
queue put, a thread switch, a ``call_soon_threadsafe`` and a wake of the event loop).
:class:`OneTripCursor` does the four steps in one function run in aiosqlite's thread
and keeps what SQLAlchemy reads afterwards (the description, the row count, the last
row id, the rows). The rows were fetched whole before too (a cursor that is not
server-side buffers them); server-side cursors (``stream()``) are left as they are.
Installed per connection by :func:`models.session.make_engine` (SQLite only)."""
from __future__ import annotations

import collections
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (AsyncAdapt_aiosqlite_connection,
                                                  AsyncAdapt_aiosqlite_cursor)
from sqlalchemy.util.concurrency import await_


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
            return await_(self._one_trip(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters) -> Any:
        try:
            return await_(self._one_trip(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _one_trip(self, operation: str, parameters, many: bool) -> None:
        connection = self._connection  # aiosqlite's Connection
        async with self._adapt_connection._execute_mutex:
            description, rows, rowcount, lastrowid = await connection._execute(
                _run, connection._conn, operation, parameters, many)
        self._description = description
        self._rows = collections.deque(rows)
        self._rowcount = rowcount
        self._lastrowid = lastrowid

    def nextset(self) -> None:
        return None  # SQLite has one result set per statement


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapted aiosqlite connection whose buffered cursors are
    :class:`OneTripCursor`; nothing else differs (no slot added: an adapted connection
    takes this class in place)."""

    __slots__ = ()
    _cursor_cls = OneTripCursor


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

"""Statements run straight on asyncpg (PostgreSQL), past SQLAlchemy's execute path.

An update's Core statements (:func:`models.session.core_rows` / ``core_rowcount`` /
``core_objects``) are short point statements; on PostgreSQL each went through the
async session's greenlet and SQLAlchemy's whole execute path (the execution context, the
cursor adapter, the result), which cost several times what asyncpg itself spends on the
statement: at saturation ``Connection.execute`` was 18 % of the bench process's samples,
asyncpg's own part of it 8 %. :func:`run_here` runs such a statement as the adapter's
cursor would (``AsyncAdapt_asyncpg_cursor._prepare_and_execute``): under the adapted
connection's lock, the transaction begun first if it is not yet, the statement prepared
through the adapter's own cache of prepared statements, its rows fetched, the row
count read from the status, an error translated by the adapter and raised as
SQLAlchemy's (a lost connection invalidated with the pool's older ones, prepared
statements outdated by the schema prepared again, as SQLAlchemy does); compiled
once (:func:`models.statement_plan.plan_of`), bound and processed with the statement's
own type processors (the result columns' chosen by the types the server reports, as
SQLAlchemy chooses them), and the connection's execute events fired (the statement
counts, the crash points).

It relies on the asyncpg adapter's private parts (SQLAlchemy 2.1, pinned):
:func:`_fits` checks they are there, and without them SQLAlchemy runs every statement.
"""
from __future__ import annotations

import re

from sqlalchemy import exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from models.statement_plan import (NOT_HERE, after_events, before_events, plan_for, processed,
                                   runs_as_is)

_STATUS = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


# the adapter class has what run_here uses (its slots and methods), checked once
_ADAPTER_FITS = (all(hasattr(AsyncAdapt_asyncpg_connection, name) for name in (
    "_execute_mutex", "_transaction", "_invalidate_schema_cache_asof"))
    and all(callable(getattr(AsyncAdapt_asyncpg_connection, name, None))
            for name in ("_prepare", "_start_transaction", "_handle_exception")))


def _fits(adapted) -> bool:
    """The connection is the asyncpg adapter's, which has what :func:`run_here` uses."""
    return _ADAPTER_FITS and type(adapted) is AsyncAdapt_asyncpg_connection


def _result_processors(plan, attributes, dialect) -> tuple:
    """The result columns' processors, as SQLAlchemy picks them for the column types
    the server reports (a numeric's depends on it), worked out at the first run."""
    typed = plan.typed
    if typed is None:
        columns = plan.compiled._result_columns
        if len(columns) != len(attributes):
            typed = ()  # not a statement of columns known to the compiler: as they come
        else:
            typed = tuple(
                (i, p) for i, p in enumerate(
                    c[3]._cached_result_processor(dialect, a.type.oid)
                    for c, a in zip(columns, attributes)) if p is not None)
        plan.typed = typed
    return typed


async def run_here(connection, statement, params, rows: bool):
    """A Core statement of the session's transaction (``connection``: its SQLAlchemy
    ``Connection``) run straight on asyncpg. Answers ``rows`` (tuples) or the row
    count; :data:`NOT_HERE` when the connection is not asyncpg's or not in a
    transaction, or the statement needs the execution context (Python-side defaults,
    several parameter sets): SQLAlchemy runs it."""
    if not runs_as_is(connection):
        return NOT_HERE
    adapted = connection.connection.dbapi_connection
    if not _fits(adapted):
        return NOT_HERE
    dialect = connection.dialect
    planned = plan_for(statement, params, dialect, typed=True)
    if planned is None:
        return NOT_HERE
    plan, params = planned
    sql, args = plan.sql, params
    try:
        sql, args = plan.bound(params)
        events = before_events(connection, statement, params, sql, args)
        async with adapted._execute_mutex:
            try:
                if adapted._transaction is None:
                    await adapted._start_transaction()
                # the dialect's mark: prepared statements older than a change of the
                # schema seen anywhere are prepared again (as the cursor passes it)
                prepared, attributes = await adapted._prepare(
                    sql, dialect._invalidate_schema_cache_asof)
                records = await prepared.fetch(*args)
                status = prepared.get_statusmsg()
            except Exception as error:  # the adapter's translation (a DB-API error)
                adapted._handle_exception(error)
        if rows:
            results = _result_processors(plan, attributes, dialect) if attributes else ()
            out = [processed(tuple(r), results) if results else tuple(r) for r in records]
        else:
            counted = _STATUS.match(status or "")
            out = int(counted.group(1)) if counted else -1
    except Exception as error:  # as SQLAlchemy raises it: a DBAPIError, else a StatementError
        dbapi = dialect.loaded_dbapi
        if isinstance(error, (dbapi.InvalidCachedStatementError, dbapi.InternalServerError)):
            # a prepared statement the schema outdated: every connection prepares its
            # statements again (PGExecutionContext_asyncpg.handle_dbapi_exception)
            dialect._invalidate_schema_cache()
        lost = isinstance(error, dbapi.Error) and dialect.is_disconnect(error, adapted, None)
        wrapped = exc.DBAPIError.instance(sql, args, error, dbapi.Error,
                                          dialect=dialect, connection_invalidated=lost)
        if lost and not connection.invalidated:
            # as SQLAlchemy does: the pool's older connections go too (a restarted server
            # ended them all), then this one
            connection.engine.pool._invalidate(connection.connection, error)
            connection.invalidate(error)
        raise wrapped from error
    if events:
        after_events(connection, statement, params, sql, args)
    return out

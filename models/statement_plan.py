"""Core statements compiled once, for running them past SQLAlchemy's execute path
(:func:`models.sqlite_driver.run_here`, :func:`models.pg_driver.run_here`): the SQL,
the bind parameters in order with their processors, the result columns' processors."""
from __future__ import annotations


class Plan:
    """A Core statement compiled once for a dialect, with what its run needs: the SQL, the
    bind parameters in order with their processors, the result columns' processors;
    for a statement with IN lists (``expanding`` parameters), the SQL and the order
    are made for each run (:meth:`~sqlalchemy.sql.compiler.SQLCompiler.construct_expanded_state`)."""

    __slots__ = ("statement", "compiled", "sql", "processors", "binds", "expanding",
                 "results", "typed")
    # results: the result columns that have a processor, (position, processor); typed:
    # the same chosen by the column types the server reports (PostgreSQL: a numeric's
    # processor depends on them), once a run has seen them (models.pg_driver)

    def __init__(self, statement, compiled, results) -> None:
        self.statement = statement  # kept: the plans are found by its id
        self.compiled = compiled
        self.sql = compiled.string
        self.processors = processors = {k: p for k, p in compiled._bind_processors.items()
                                        if p is not None}
        self.binds = tuple((name, processors.get(name)) for name in compiled.positiontup)
        self.expanding = bool(compiled.literal_execute_params or compiled.post_compile_params)
        self.results = tuple((i, p) for i, p in enumerate(results) if p is not None)
        self.typed = None

    def bound(self, params: dict) -> tuple[str, tuple]:
        """The SQL and its arguments for these parameters."""
        compiled = self.compiled
        if self.expanding:
            state = compiled.construct_expanded_state(params, escape_names=False)
            processors = {**self.processors, **state.processors}
            values = state.parameters
            binds = [(name, processors.get(name)) for name in state.positiontup]
            sql = state.statement
        else:
            values = compiled.construct_params(params, escape_names=False)
            binds, sql = self.binds, self.sql
        return sql, tuple(values[name] if process is None else process(values[name])
                          for name, process in binds)


_PLANS: dict[tuple, Plan | None] = {}
_PLAN_LIMIT = 512  # statements built anew for each run would otherwise pile up
NOT_HERE = object()  # run_here's answer: not run, SQLAlchemy's execute path runs it


def plan_of(statement, keys: tuple, dialect, *, typed: bool = False) -> Plan | None:
    """The plan of ``statement`` run with parameters ``keys`` on ``dialect``; None when
    the statement needs SQLAlchemy's execution context. ``typed``: the result columns'
    processors are chosen at the first run, by the types the server reports."""
    # per dialect: an engine's own JSON serializer, its SQLite version's features
    key = (id(statement), keys, id(dialect))
    found = _PLANS.get(key, NOT_HERE)
    if found is not NOT_HERE and (found is None or found.statement is statement
                                  and found.compiled.dialect is dialect):
        return found
    # compiled as Connection.execute compiles it (an INSERT's or UPDATE's columns are
    # the parameters' keys)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    plan = None
    # what the execution context does beside binding, expanding IN lists and running
    # is left to it: Python-side column defaults, a schema translation
    if (compiled.positional and compiled.positiontup is not None
            and not compiled.insert_prefetch and not compiled.update_prefetch
            and not compiled.schema_translate_map):
        results = () if typed else tuple(c[3]._cached_result_processor(dialect, None)
                                         for c in compiled._result_columns)
        plan = Plan(statement, compiled, results)
    if len(_PLANS) >= _PLAN_LIMIT:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def processed(row: tuple, results: tuple) -> tuple:
    values = list(row)
    for i, process in results:
        values[i] = process(values[i])
    return tuple(values)


def runs_as_is(connection) -> bool:
    """The SQLAlchemy ``Connection`` is in a transaction and would run a statement as
    it is: not closed or invalidated, no echo, no schema translation."""
    return not (connection.closed or connection.invalidated
                or not connection.in_transaction() or connection._echo
                or "schema_translate_map" in connection._execution_options)


def one_set(params) -> dict | None:
    """The statement's parameters as one dict; None for several sets (SQLAlchemy's
    executemany, left to it)."""
    if isinstance(params, (list, tuple)):
        if len(params) != 1:
            return None
        params = params[0]
    return params or {}


def plan_for(statement, params, dialect, *, typed: bool = False) -> tuple[Plan, dict] | None:
    """The plan of ``statement`` with its parameters as one dict (:func:`one_set`,
    :func:`plan_of`); None when SQLAlchemy's execute path must run it."""
    params = one_set(params)
    if params is None:
        return None
    plan = plan_of(statement, tuple(sorted(params)), dialect, typed=typed)
    return None if plan is None else (plan, params)


def before_events(connection, statement, params: dict, sql: str, args) -> bool:
    """Fire the connection's ``before_execute`` and ``before_cursor_execute`` events
    as SQLAlchemy's execute path would; returns whether there are listeners (then
    :func:`after_events` fires the rest)."""
    events = connection._has_events or connection.engine._has_events
    if events:
        for fn in connection.dispatch.before_execute:
            fn(connection, statement, (), params, {})
        for fn in connection.dispatch.before_cursor_execute:
            fn(connection, None, sql, args, None, False)
    return events


def after_events(connection, statement, params: dict, sql: str, args) -> None:
    for fn in connection.dispatch.after_cursor_execute:
        fn(connection, None, sql, args, None, False)
    for fn in connection.dispatch.after_execute:
        fn(connection, statement, (), params, {}, None)

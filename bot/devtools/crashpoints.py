"""Test-only crash points: kill the bot with SIGKILL at a chosen moment.

Inert unless the environment variable ``SOPBOT_CRASH_AT`` is set (it is never set in
production; ``sopbot run`` behaves exactly the same without it). The value names a point
and a count, and the process kills itself (``os.kill(os.getpid(), SIGKILL)``: no
clean-up, no flush, like a power cut) when the point is reached that many times::

    SOPBOT_CRASH_AT=commit:12       after the 12th database commit that wrote something
    SOPBOT_CRASH_AT=outbox_sent:3   after Telegram accepted the 3rd outbox message and
                                    before the bot recorded it as sent
    SOPBOT_CRASH_AT=inbox_committed:2  after the 2nd batch of updates was committed to
                                    the inbox and before Telegram was told (the next
                                    getUpdates offset, or the webhook's 200)
    SOPBOT_CRASH_AT=processing:5    after the handlers of the 5th update ran (replies
                                    sent) and before its transaction committed
    SOPBOT_CRASH_AT=committed_calls_pending:2  after the 2nd update whose run deferred
                                    Bot API calls (SOPBOT_SPLIT_CALLS) committed and
                                    before those calls were made

Used by ``tests/test_crash_safety.py`` (see ``docs/reliability.md``).
"""
from __future__ import annotations

import os
import signal

ENV = "SOPBOT_CRASH_AT"

_point, _, _count = os.environ.get(ENV, "").partition(":")
_target = int(_count) if _count.isdigit() else 0
_seen = 0


def hit(point: str) -> None:
    """Count ``point``; at the configured count, die at once."""
    global _seen
    if not _target or point != _point:
        return
    _seen += 1
    if _seen >= _target:
        os.kill(os.getpid(), signal.SIGKILL)


def _install_commit_counter() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    def wrote(session, *_args) -> None:
        session.info["crashpoints_wrote"] = True

    def on_execute(state) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            state.session.info["crashpoints_wrote"] = True

    def began(session, _transaction, connection) -> None:
        # the session's Core statements (models.session.core_rows) pass neither its
        # flush nor its execute: they are seen on the connection, which is the
        # session's until the commit
        connection.info["crashpoints_session"] = session.info

    def on_connection_execute(connection, statement, *_args) -> None:
        info = connection.info.get("crashpoints_session")
        if info is not None and getattr(statement, "is_dml", False):
            info["crashpoints_wrote"] = True

    def after_commit(session) -> None:
        if session.info.pop("crashpoints_wrote", False):
            hit("commit")

    event.listen(Session, "after_flush", wrote)
    event.listen(Session, "do_orm_execute", on_execute)
    event.listen(Session, "after_begin", began)
    event.listen(Engine, "after_execute", on_connection_execute)
    event.listen(Session, "after_commit", after_commit)


if _target and _point == "commit":
    _install_commit_counter()

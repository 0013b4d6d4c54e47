"""Append-only audit trail, each row hash-chained to the one before it.

The single ``audit_head`` row holds the hash of the last row and the number of rows, so
a cut-off tail (the last rows deleted) no longer matches it, and a deleted head is
noticed while rows exist. Every row's hash is stored, so a hash printed earlier (the
head on the final PDF and in each archive ``MANIFEST.txt``) stays in the chain as long as
nothing before it is rewritten: ``sopbot audit verify --expect-head HASH`` proves that
an old copy still matches, even against an attacker who recomputed all later hashes.

With ``SOPBOT_AUDIT_KEY`` set, rows are hashed with HMAC-SHA256 under that key, so the
chain cannot be recomputed without it. The head records the mode and the first row hashed
with the key (``keyed_from``; rows before it keep their plain hashes and are protected by
the keyed rows after them, whose hash covers ``prev_hash``) and a short fingerprint of
the key. Once keyed, a process without the key (or with another one) cannot append.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import weakref
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, bindparam, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from models import AuditHead, AuditLog
from models.session import core_rows_sync

log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEY_ENV = "SOPBOT_AUDIT_KEY"
PLAIN = "sha256"
KEYED = "hmac-sha256"
HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class AuditKeyError(RuntimeError):
    """The chain is keyed and this process has no key, or another one."""


def audit_key() -> bytes | None:
    """The HMAC key from ``SOPBOT_AUDIT_KEY`` (None when unset or empty)."""
    value = os.environ.get(KEY_ENV, "")
    return value.encode() if value else None


def key_id(key: bytes) -> str:
    """A short fingerprint naming the key (not enough to find it)."""
    return hashlib.sha256(b"sopbot-audit-key-id:" + key).hexdigest()[:16]


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def row_hash(prev_hash: str, created_at: datetime, actor_id: int | None, cycle_id: int | None,
             action: str, payload: str, key: bytes | None = None) -> str:
    material = "|".join(
        [prev_hash, created_at.isoformat(), str(actor_id or ""), str(cycle_id or ""), action,
         payload]
    ).encode()
    if key is None:
        return hashlib.sha256(material).hexdigest()
    return hmac.new(key, material, hashlib.sha256).hexdigest()


def key_problem(head: AuditHead | None, key: bytes | None) -> str | None:
    """Why this process cannot append to the chain with ``key`` (None: it can)."""
    if head is None or head.mode != KEYED:
        return None
    if key is None:
        return (f"jejak audit berkunci HMAC (sejak baris {head.keyed_from}) tetapi {KEY_ENV} "
                "tidak diatur; atur kunci yang sama sebelum menjalankan bot.")
    if head.key_id and key_id(key) != head.key_id:
        return (f"{KEY_ENV} bukan kunci jejak audit ini (sidik kunci {key_id(key)}, "
                f"seharusnya {head.key_id}).")
    return None


_QUEUE = "sopbot_audit_queue"  # session.info: the rows recorded, written at commit
_AH, _AL = AuditHead.__table__, AuditLog.__table__
_HEAD_COLUMNS = ("last_hash", "count", "mode", "keyed_from", "key_id")
#: the head as this process's last append left it, per engine
HeadState = namedtuple("HeadState", _HEAD_COLUMNS)
_KNOWN: "weakref.WeakKeyDictionary[Engine, HeadState]" = weakref.WeakKeyDictionary()
# Core statements, built once: the head is one row of five columns, the rows plain
# inserts (the ORM's unit of work cost more CPU than the statements themselves)
_HEAD_FOR_UPDATE = (select(*(_AH.c[name] for name in _HEAD_COLUMNS))
                    .where(_AH.c.id == 1).with_for_update())
# the head moved on from the state this process knows, in one statement: it matches
# only while nobody else has appended since (the last hash and the count are the
# chain's state: a hash never comes twice), and takes the head's lock as the locking
# read would; no match: the head is read under its lock (``_HEAD_FOR_UPDATE``)
_MOVE_KNOWN_HEAD = (update(_AH)
                    .where(_AH.c.id == 1, _AH.c.last_hash == bindparam("was_hash"),
                           _AH.c.count == bindparam("was_count"))
                    .values(last_hash=bindparam("new_last_hash"), count=bindparam("new_count")))
_SET_HEAD = (update(_AH).where(_AH.c.id == 1)
             .values(last_hash=bindparam("new_last_hash"), count=bindparam("new_count"),
                     mode=bindparam("new_mode"), keyed_from=bindparam("new_keyed_from"),
                     key_id=bindparam("new_key_id")))
_INSERT_ROW = insert(_AL).returning(_AL.c.id)
_INSERT_ROWS = insert(_AL).returning(_AL.c.id, sort_by_parameter_order=True)


def _insert_genesis(dialect: str):
    """The head of an empty chain, unless another transaction has just created it."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(AuditHead).values(id=1, last_hash=GENESIS, count=0,
                                    mode=PLAIN).on_conflict_do_nothing()


@dataclass
class _Queued:
    row: AuditLog
    trans: SessionTransaction  # the (nested) transaction it was recorded in


async def record(session: AsyncSession, action: str, *, actor_id: int | None,
                 cycle_id: int | None, at: datetime, **payload: Any) -> AuditLog:
    """Append a row at the commit of this transaction; no statement now.

    The head is locked only just before the commit (:func:`_write_queued`, a
    ``before_commit`` listener), so the transactions of all offices and processes do not
    wait for each other's work on it, only for each other's few statements at commit.
    The row returned gets its ``id``, ``prev_hash`` and ``hash`` at commit (it is not
    added to the session: the row is written with a plain insert); a row recorded in a
    savepoint that is rolled back, or in a transaction that is rolled back, is never
    written."""
    body = _canonical(payload)
    at = at.astimezone(timezone.utc)  # hashed as it is stored
    row = AuditLog(created_at=at, actor_id=actor_id, cycle_id=cycle_id, action=action,
                   payload=body)
    sync = session.sync_session
    # the transaction it belongs to; none yet: begun as a first statement would
    # (autobegin, no statement), so a close without commit drops the row
    trans = sync.get_nested_transaction() or sync.get_transaction() or sync._autobegin_t()
    sync.info.setdefault(_QUEUE, []).append(_Queued(row, trans))
    return row


def _chain(rows: list[AuditLog], prev: str, key: bytes | None) -> str:
    """Each row's ``prev_hash`` and ``hash`` from ``prev`` on; the last hash."""
    for row in rows:
        row.prev_hash = prev
        row.hash = prev = row_hash(prev, row.created_at, row.actor_id, row.cycle_id,
                                   row.action, row.payload, key)
    return prev


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind()
    return getattr(bind, "engine", None)


def _write_queued(session: Session) -> None:
    """``before_commit``: the rows recorded in this transaction appended in the order
    recorded, under the head's row lock, which the commit that follows releases. Ids are
    given after the lock, so they follow the chain's order across transactions
    (``verify`` reads the chain by id). A keyed chain and a process without its key (or
    with another): :class:`AuditKeyError`, and the transaction is not committed.

    Two statements when the head is as this process's last append left it: the head
    moved on under its lock, then the rows. Four when another writer appended meanwhile
    (or a commit of this process failed after writing): that update matches nothing,
    then the head is read under its lock, the rows inserted and the head updated; those
    three alone on the first append of a process, and the first with a key."""
    queue = session.info.get(_QUEUE)
    if not queue or session.in_nested_transaction():  # a savepoint's release: not yet
        return
    rows = [q.row for q in queue]
    key = audit_key()
    engine = _engine_of(session)
    known = _KNOWN.get(engine) if engine is not None else None
    head: HeadState | None = None
    if known is not None and key_problem(known, key) is None \
            and (key is None or known.mode == KEYED):
        last = _chain(rows, known.last_hash, key)
        moved = core_rows_sync(session, _MOVE_KNOWN_HEAD, {
            "was_hash": known.last_hash, "was_count": known.count, "new_last_hash": last,
            "new_count": known.count + len(rows)}, rows=False)
        if moved == 1:
            head = known._replace(last_hash=last, count=known.count + len(rows))
    if head is None:  # the head as it is, locked
        found = session.execute(_HEAD_FOR_UPDATE).first()
        if found is None:  # the first row ever: two first writers must not both create it
            session.execute(_insert_genesis(session.get_bind().dialect.name))
            found = session.execute(_HEAD_FOR_UPDATE).first()
        found = HeadState(*found)
        problem = key_problem(found, key)
        if problem is not None:
            raise AuditKeyError(problem)
        last = _chain(rows, found.last_hash, key)
        ids = _insert(session, rows)
        head = found._replace(last_hash=last, count=found.count + len(rows))
        if key is not None and found.mode != KEYED:  # from this row on, the chain is keyed
            head = head._replace(mode=KEYED, keyed_from=ids[0], key_id=key_id(key))
        session.execute(_SET_HEAD, {f"new_{name}": value
                                    for name, value in head._asdict().items()})
    else:
        ids = _insert(session, rows)
    for row, row_id in zip(rows, ids):
        row.id = row_id
    if len(rows) > 1 and sorted(ids) != ids:
        raise RuntimeError("audit rows were given ids out of the chain's order")
    if engine is not None:
        _KNOWN[engine] = head  # wrong after a failed commit: the next append reads it
    _show_head(session, head)
    del queue[:]


def _insert(session: Session, rows: list[AuditLog]) -> list[int]:
    """The rows inserted in the order given; their ids in that order."""
    values = [{"created_at": r.created_at, "actor_id": r.actor_id, "cycle_id": r.cycle_id,
               "action": r.action, "payload": r.payload, "prev_hash": r.prev_hash,
               "hash": r.hash} for r in rows]
    if len(values) == 1:
        (row_id,), = core_rows_sync(session, _INSERT_ROW, values[0])
        return [row_id]
    return list(session.execute(_INSERT_ROWS, values).scalars())


def _show_head(session: Session, head: HeadState) -> None:
    """A head object this session holds (read earlier, kept across commits) shows the
    head as written (it is written with a plain update, not through the object)."""
    held = session.identity_map.get(identity_key(AuditHead, 1))
    if held is not None:
        for name, value in head._asdict().items():
            set_committed_value(held, name, value)


def _within(trans: SessionTransaction | None, ended: SessionTransaction) -> bool:
    """Whether ``trans`` is ``ended`` or nested in it."""
    while trans is not None:
        if trans is ended:
            return True
        trans = trans.parent
    return False


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """``after_soft_rollback``: rows recorded in the rolled-back transaction or savepoint
    (or in a savepoint within it) are dropped; those of an enclosing one stay."""
    queue = session.info.get(_QUEUE)
    if queue:
        queue[:] = [q for q in queue if not _within(q.trans, previous_transaction)]


def _drop_at_end(session: Session, transaction: SessionTransaction) -> None:
    """``after_transaction_end``: nothing outlives the outermost transaction (committed,
    its rows are written; rolled back or closed, they are dropped)."""
    if transaction.parent is None:
        session.info.pop(_QUEUE, None)


def _lost(session: Session) -> None:
    """``after_commit``: rows still queued were not written. Only a commit of the
    outermost transaction while a savepoint of it is still open does that (its
    ``before_commit`` runs before the savepoint is released); say so loudly."""
    if session.in_nested_transaction():  # a savepoint's release
        return
    queue = session.info.pop(_QUEUE, None)
    if queue:
        log.error("audit: %d row(s) recorded in a savepoint left open at commit were not "
                  "written: %s", len(queue), ", ".join(q.row.action for q in queue))


if not event.contains(Session, "before_commit", _write_queued):
    event.listen(Session, "before_commit", _write_queued)
    event.listen(Session, "after_commit", _lost)
    event.listen(Session, "after_soft_rollback", _drop_rolled_back)
    event.listen(Session, "after_transaction_end", _drop_at_end)


@dataclass(frozen=True)
class Head:
    """The head of the chain as printed on documents: hash, rows, mode."""

    hash: str
    rows: int
    mode: str = PLAIN

    @property
    def line(self) -> str:
        return f"{self.hash} ({self.rows} baris, {self.mode})"


async def current_head(session: AsyncSession) -> Head:
    """The head as it stands in this session (GENESIS and 0 rows before any row)."""
    head = await session.get(AuditHead, 1)
    if head is None:
        return Head(GENESIS, 0)
    return Head(head.last_hash, head.count, head.mode or PLAIN)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    problems: tuple[str, ...]
    mode: str = PLAIN
    unchecked: int = 0                   # keyed rows whose hash needs the key
    notes: tuple[str, ...] = ()
    expected_at: int | None = None       # --expect-head: the row that has that hash
    head: str | None = None


async def verify(session: AsyncSession, *, key: bytes | None = None,
                 expect_head: str | None = None) -> VerifyResult:
    """Recompute the chain; report changed, removed or reordered rows, a missing head,
    a cut-off tail and (with ``expect_head``) whether a hash printed earlier is still in
    the chain. ``key``: the HMAC key of a keyed chain (``audit_key()``)."""
    problems: list[str] = []
    notes: list[str] = []
    head = await session.get(AuditHead, 1)
    mode = head.mode if head is not None and head.mode else PLAIN
    keyed_from = head.keyed_from if head is not None and mode == KEYED else None
    check_keyed = key is not None
    if mode == KEYED:
        if key is None:
            notes.append(f"rantai berkunci HMAC sejak baris {keyed_from}; tanpa {KEY_ENV} "
                         "hash baris-baris itu tidak dapat diperiksa (hanya sambungannya).")
        elif head.key_id and key_id(key) != head.key_id:
            problems.append(f"{KEY_ENV} bukan kunci rantai ini (sidik kunci {key_id(key)}, "
                            f"seharusnya {head.key_id}).")
            check_keyed = False
    elif key is not None and head is not None and head.count:
        problems.append(f"{KEY_ENV} diatur tetapi rantai tidak berkunci (mode {PLAIN}): rantai "
                        "ditulis ulang tanpa kunci, atau kunci baru dipasang dan belum ada "
                        "baris baru sejak itu.")
    expect = expect_head.strip().lower() if expect_head is not None else None
    expected_at = 0 if expect == GENESIS else None
    prev = GENESIS
    count = unchecked = 0
    last_id = None
    keyed_seen = False
    result = await session.stream_scalars(select(AuditLog).order_by(AuditLog.id))
    async for row in result:
        count += 1
        last_id = row.id
        if row.prev_hash != prev:
            problems.append(f"baris {row.id}: rantai terputus (ada baris yang dihapus atau diubah sebelumnya)")
        keyed = keyed_from is not None and row.id >= keyed_from
        keyed_seen = keyed_seen or row.id == keyed_from
        if keyed and not check_keyed:
            unchecked += 1
        else:
            expected = row_hash(row.prev_hash, row.created_at, row.actor_id, row.cycle_id,
                                row.action, row.payload, key if keyed else None)
            if expected != row.hash:
                problems.append(f"baris {row.id}: isi tidak cocok dengan hash (baris diubah)")
        if expect is not None and expected_at is None and row.hash == expect:
            expected_at = row.id
        prev = row.hash
    if head is None:
        if count:
            problems.append(f"kepala rantai (audit_head) tidak ada padahal ada {count} baris: "
                            "kepala dihapus")
    else:
        if head.last_hash != prev:
            problems.append(f"ujung rantai tidak cocok: kepala {head.last_hash[:16]}..., baris "
                            f"terakhir ({last_id or '-'}) {prev[:16]}... (baris terakhir "
                            "dihapus atau diubah, rantai dipotong)")
        if head.count != count:
            problems.append(f"jumlah baris {count}, seharusnya {head.count} menurut kepala "
                            "(baris dihapus atau ditambahkan di luar bot)")
        if keyed_from is not None and not keyed_seen:
            problems.append(f"kepala menyatakan rantai berkunci sejak baris {keyed_from}, "
                            "tetapi baris itu tidak ada")
    if expect is not None and expected_at is None:
        problems.append(f"kepala {expect} tidak ada di rantai: jejak audit ditulis ulang atau "
                        "dipotong setelah salinan itu dibuat")
    return VerifyResult(ok=not problems, rows=count, problems=tuple(problems), mode=mode,
                        unchecked=unchecked, notes=tuple(notes), expected_at=expected_at,
                        head=head.last_hash if head is not None else None)

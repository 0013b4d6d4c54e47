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
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditHead, AuditLog

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


# built once: every recorded action reads the head with it
_HEAD_FOR_UPDATE = select(AuditHead).where(AuditHead.id == 1).with_for_update()


async def record(session: AsyncSession, action: str, *, actor_id: int | None,
                 cycle_id: int | None, at: datetime, **payload: Any) -> AuditLog:
    """Append a row; the head row is locked so concurrent writers cannot fork the chain."""
    head = (await session.execute(_HEAD_FOR_UPDATE)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_hash=GENESIS, count=0, mode=PLAIN)
        session.add(head)
        await session.flush()
    key = audit_key()
    problem = key_problem(head, key)
    if problem is not None:
        raise AuditKeyError(problem)
    body = _canonical(payload)
    at = at.astimezone(timezone.utc)  # hashed as it is stored
    digest = row_hash(head.last_hash, at, actor_id, cycle_id, action, body, key)
    row = AuditLog(created_at=at, actor_id=actor_id, cycle_id=cycle_id, action=action,
                   payload=body, prev_hash=head.last_hash, hash=digest)
    session.add(row)
    await session.flush()
    if key is not None and head.mode != KEYED:  # from this row on, the chain is keyed
        head.mode, head.keyed_from, head.key_id = KEYED, row.id, key_id(key)
    head.last_hash = digest
    head.count += 1
    await session.flush()
    return row


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

"""Append-only audit trail, each row hash-chained to the one before it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditHead, AuditLog

GENESIS = "0" * 64


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def row_hash(prev_hash: str, created_at: datetime, actor_id: int | None, cycle_id: int | None,
             action: str, payload: str) -> str:
    material = "|".join(
        [prev_hash, created_at.isoformat(), str(actor_id or ""), str(cycle_id or ""), action,
         payload]
    )
    return hashlib.sha256(material.encode()).hexdigest()


async def record(session: AsyncSession, action: str, *, actor_id: int | None,
                 cycle_id: int | None, at: datetime, **payload: Any) -> AuditLog:
    """Append a row; the head row is locked so concurrent writers cannot fork the chain."""
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_hash=GENESIS, count=0)
        session.add(head)
        await session.flush()
    body = _canonical(payload)
    at = at.astimezone(timezone.utc)  # hashed as it is stored
    digest = row_hash(head.last_hash, at, actor_id, cycle_id, action, body)
    row = AuditLog(created_at=at, actor_id=actor_id, cycle_id=cycle_id, action=action,
                   payload=body, prev_hash=head.last_hash, hash=digest)
    session.add(row)
    head.last_hash = digest
    head.count += 1
    await session.flush()
    return row


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    problems: tuple[str, ...]


async def verify(session: AsyncSession) -> VerifyResult:
    """Recompute the chain; report changed, removed or reordered rows."""
    problems: list[str] = []
    prev = GENESIS
    count = 0
    result = await session.stream_scalars(select(AuditLog).order_by(AuditLog.id))
    async for row in result:
        count += 1
        if row.prev_hash != prev:
            problems.append(f"baris {row.id}: rantai terputus (ada baris yang dihapus atau diubah sebelumnya)")
        expected = row_hash(row.prev_hash, row.created_at, row.actor_id, row.cycle_id,
                            row.action, row.payload)
        if expected != row.hash:
            problems.append(f"baris {row.id}: isi tidak cocok dengan hash (baris diubah)")
        prev = row.hash
    head = await session.get(AuditHead, 1)
    if head is not None:
        if head.last_hash != prev:
            problems.append("ujung rantai tidak cocok (baris terakhir dihapus atau diubah)")
        if head.count != count:
            problems.append(f"jumlah baris {count}, seharusnya {head.count}")
    return VerifyResult(ok=not problems, rows=count, problems=tuple(problems))

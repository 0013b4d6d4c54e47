"""Writing to the outbox: a message is queued in the transaction that causes it.

The payload is plain JSON so the workflow never touches Telegram objects:
``{"text": str, "buttons": [[[label, callback_data], ...], ...], "files": [...],
"force_reply": bool}``. ``bot.outbox_sender`` delivers it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from models import Outbox, Person

Button = tuple[str, str]


def make_payload(text: str, buttons: Sequence[Sequence[Button]] | None = None, *,
                 files: Sequence[dict] | None = None, force_reply: bool = False) -> dict:
    payload: dict = {"text": text}
    if buttons:
        payload["buttons"] = [[list(b) for b in row] for row in buttons]
    if files:
        payload["files"] = list(files)
    if force_reply:
        payload["force_reply"] = True
    return payload


async def enqueue(session: AsyncSession, person: Person | None, kind: str, text: str,
                  buttons: Sequence[Sequence[Button]] | None = None, *, at: datetime,
                  files: Sequence[dict] | None = None, chat_id: int | None = None,
                  force_reply: bool = False) -> Outbox:
    """Queue one message; a person not yet registered gets it once they register."""
    row = Outbox(
        person_id=person.id if person else None,
        chat_id=chat_id if chat_id is not None else (person.telegram_user_id if person else None),
        kind=kind,
        payload=make_payload(text, buttons, files=files, force_reply=force_reply),
        created_at=at,
        next_attempt_at=at,
    )
    session.add(row)
    session.info["outbox_written"] = True  # the caller wakes the sender after commit
    return row

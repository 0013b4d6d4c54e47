"""Writing to the outbox: a message is queued in the transaction that causes it.

The payload is plain JSON so the workflow never touches Telegram objects:
``{"text": str, "buttons": [[[label, callback_data], ...], ...], "files": [...],
"force_reply": bool}``. ``bot.telegram.outbox_sender`` delivers it.

No payload exceeds Telegram's limits (``bot.render``): ``enqueue`` splits a long text
into several rows, in order, the files on the first and the buttons on the last;
``make_payload`` (one row) shortens what does not fit; button labels are shortened.

Each row has a priority: ``REPLY`` (the default: what a person's own action causes, to
them or to the next holder) goes before ``BULK`` (the reminder sweep, digests, prompts),
so a person pressing a button during a fan-out of reminders is not served after it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot import render
from models import Outbox, Person

Button = tuple[str, str]
BULK = 0   # reminders, digests, prompts: many at once, minutes do not matter
REPLY = 1  # caused by what a person just did: sent before any bulk row


def make_payload(text: str, buttons: Sequence[Sequence[Button]] | None = None, *,
                 files: Sequence[dict] | None = None, force_reply: bool = False) -> dict:
    """One message; a text too long for one message is shortened (``enqueue`` splits)."""
    parts = render.split(text, render.TEXT_LIMIT - 2)
    if len(parts) > 1:
        parts[0] = parts[0] + "\n" + render.ELLIPSIS
    payload: dict = {"text": parts[0]}
    if buttons:
        payload["buttons"] = [[[render.label(label), data] for label, data in row]
                              for row in buttons]
    if files:
        payload["files"] = list(files)
    if force_reply:
        payload["force_reply"] = True
    return payload


def make_payloads(text: str, buttons: Sequence[Sequence[Button]] | None = None, *,
                  files: Sequence[dict] | None = None, force_reply: bool = False
                  ) -> list[dict]:
    """The messages for ``text`` in order: the files with the first, the buttons (or
    the reply prompt) with the last."""
    parts = render.split(text)
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        out.append(make_payload(part, buttons if last else None,
                                files=files if i == 0 else None,
                                force_reply=force_reply and last))
    return out


async def enqueue(session: AsyncSession, person: Person | None, kind: str, text: str,
                  buttons: Sequence[Sequence[Button]] | None = None, *, at: datetime,
                  files: Sequence[dict] | None = None, chat_id: int | None = None,
                  force_reply: bool = False, priority: int = REPLY) -> Outbox:
    """Queue a message (several rows when the text is too long for one); a person not
    yet registered gets it once they register. Returns the last row (the buttons')."""
    row = None
    for payload in make_payloads(text, buttons, files=files, force_reply=force_reply):
        row = Outbox(
            person_id=person.id if person else None,
            chat_id=chat_id if chat_id is not None else (
                person.telegram_user_id if person else None),
            kind=kind,
            payload=payload,
            created_at=at,
            next_attempt_at=at,
            priority=priority,
        )
        session.add(row)
    session.info["outbox_written"] = True  # the caller wakes the sender after commit
    return row

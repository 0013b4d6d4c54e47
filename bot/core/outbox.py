"""Writing to the outbox: a message is queued in the transaction that causes it.

The payload is plain JSON so the workflow never touches Telegram objects:
``{"text": str, "buttons": [[[label, callback_data], ...], ...], "files": [...],
"after": [...], "force_reply": bool}``: the files go before the text (one file with a
short text: the text is its caption, the buttons under it), the ``after`` files follow
it. ``bot.telegram.outbox_sender`` delivers it.

A message with buttons names what they act on (``ref``: "run:12", "col:3:4"); when
that is done or replaced, :func:`retire` queues a "remove keyboard" row
(:data:`REMOVE_KEYBOARD`) for every chat that got such a message: the sender removes
the keyboards of those sent and drops those not yet sent (stale when they would go).

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

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import render
from models import Outbox, Person
from models.enums import OutboxStatus

Button = tuple[str, str]
BULK = 0   # reminders, digests, prompts: many at once, minutes do not matter
REPLY = 1  # caused by what a person just did: sent before any bulk row
REMOVE_KEYBOARD = "remove_keyboard"  # the kind of a row that removes keyboards
DIRECT = "direct"  # a message with buttons the bot sent as an answer, recorded (sent)


def covers(retired: str, ref: str) -> bool:
    """Whether retiring ``retired`` retires ``ref`` ("run:12" covers "run:12:p5")."""
    return bool(ref) and (ref == retired or ref.startswith(retired + ":"))


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
                  files: Sequence[dict] | None = None, force_reply: bool = False,
                  after: Sequence[dict] | None = None) -> list[dict]:
    """The messages for ``text`` in order: the files with the first, the buttons (or
    the reply prompt) and the ``after`` files with the last."""
    parts = render.split(text)
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        payload = make_payload(part, buttons if last else None,
                               files=files if i == 0 else None,
                               force_reply=force_reply and last)
        if after and last:
            payload["after"] = list(after)
        out.append(payload)
    return out


async def enqueue(session: AsyncSession, person: Person | None, kind: str, text: str,
                  buttons: Sequence[Sequence[Button]] | None = None, *, at: datetime,
                  files: Sequence[dict] | None = None, chat_id: int | None = None,
                  force_reply: bool = False, priority: int = REPLY, ref: str = "",
                  after: Sequence[dict] | None = None) -> Outbox:
    """Queue a message (several rows when the text is too long for one); a person not
    yet registered gets it once they register. Returns the last row (the buttons').
    ``ref``: what the buttons act on (see :func:`retire`)."""
    row = None
    for payload in make_payloads(text, buttons, files=files, force_reply=force_reply,
                                 after=after):
        row = Outbox(
            person_id=person.id if person else None,
            chat_id=chat_id if chat_id is not None else (
                person.telegram_user_id if person else None),
            kind=kind,
            payload=payload,
            created_at=at,
            next_attempt_at=at,
            priority=priority,
            ref=ref,
        )
        session.add(row)
    session.info["outbox_written"] = True  # the caller wakes the sender after commit
    return row


async def retire(session: AsyncSession, ref: str, *, at: datetime) -> int:
    """The messages whose buttons act on ``ref`` (or on a ref under it) no longer apply:
    one :data:`REMOVE_KEYBOARD` row for each chat that got or is getting one, after
    them in the chat's order. Returns how many rows were queued."""
    if not ref:
        return 0
    match = or_(Outbox.ref == ref, Outbox.ref.like(ref + ":%"))
    rows = (await session.execute(
        select(Outbox.id, Outbox.chat_id, Outbox.person_id, Outbox.kind, Outbox.ref)
        .where(match, Outbox.chat_id.is_not(None)).order_by(Outbox.id))).all()
    latest: dict[int, tuple[int, int | None]] = {}  # chat -> (last message row, person)
    done: dict[int, int] = {}  # chat -> last removal of exactly this ref
    for row_id, chat_id, person_id, kind, row_ref in rows:
        if kind == REMOVE_KEYBOARD:
            if row_ref == ref:
                done[chat_id] = row_id
        else:
            latest[chat_id] = (row_id, person_id)
    queued = 0
    for chat_id, (row_id, person_id) in latest.items():
        if done.get(chat_id, 0) > row_id:
            continue  # removed already, nothing new since
        await remove_keyboards(session, chat_id, person_id=person_id, ref=ref, at=at)
        queued += 1
    return queued


async def remove_keyboards(session: AsyncSession, chat_id: int, *, at: datetime,
                           person_id: int | None = None, ref: str = "",
                           message_ids: Sequence[int] = ()) -> Outbox:
    """Queue the removal of the keyboards of the messages of ``ref`` in a chat, and of
    ``message_ids`` (a prompt the bot sent as a direct answer)."""
    row = Outbox(person_id=person_id, chat_id=chat_id, kind=REMOVE_KEYBOARD,
                 payload={"text": "", "message_ids": [int(m) for m in message_ids]},
                 created_at=at, next_attempt_at=at, ref=ref)
    session.add(row)
    session.info["outbox_written"] = True
    return row


async def record_sent(session: AsyncSession, person: Person | None, chat_id: int,
                      message_id: int, *, ref: str, at: datetime) -> Outbox:
    """A message with buttons the bot sent as a direct answer (not through the outbox),
    recorded as sent so that :func:`retire` removes its keyboard too."""
    row = Outbox(person_id=person.id if person else None, chat_id=chat_id, kind=DIRECT,
                 payload={"text": "", "direct": True}, status=OutboxStatus.SENT, attempts=1,
                 created_at=at, next_attempt_at=at, sent_at=at,
                 telegram_message_id=message_id, ref=ref)
    session.add(row)
    return row

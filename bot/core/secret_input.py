"""A secret typed in the chat (the TTE passphrase) never reaches the inbox.

The durable intake (``bot/telegram/intake.py``) commits every update's payload to the ``inbox``
table before any handler runs. A message that answers the bot's request for the TTE
passphrase must therefore be recognised when it is stored, not when it is handled:
:meth:`SecretInput.redact` replaces its text in the payload by :data:`REDACTED` and
keeps the text in this process's memory only, under the update id, for the handler
(:meth:`take`). Nothing else holds it: not the inbox row, not the call journal (the
handler's Bot API calls never carry it), not a log line; the handler deletes the
message in the chat right after reading it.

Who is waiting for a passphrase is known at store time from two sources, so that no
answer slips through in between:

* the person's conversation in the database (kind :data:`PASSPHRASE`), committed with
  the update whose handler asked; it survives a restart;
* :meth:`expect`, which the handler calls before it sends the question: the person
  may answer before that update's transaction commits, so the intake also looks at
  this in-memory mark, which is cleared (:meth:`settle`) only after that person's
  update has committed.
  The mark is read before the database, so one of the two always says "waiting".

Neither source covers an answer stored by *another* process in the moment between the
question reaching the person and the asking update's commit (several processes on
PostgreSQL: the mark is in the memory of the process that asked). The processing of a
row closes that gap: a chat's rows are processed in order, so when the answer is
processed the asking update has committed, and the intake looks at the database again
(:meth:`candidate_payload`) and, when the sender waits for a passphrase, rewrites the
row with the text redacted in a commit of its own before any handler runs, keeping the
text in the memory of the process that processes it. The same look covers one process
whose row was stored before its own question went out (a text typed at once, stored in
the same batch as the press that asks, or while that press waited on the chat's queue
in this process). The look is left out for a row this process stored and a sender it
never asked (:meth:`ever_asked`): with one process (SQLite) nobody else can have asked
them since the store found them not waiting; on PostgreSQL such a row was claimed in its
store only when the chat's earlier unprocessed rows were this process's, on its queues,
so a press among them that asks does so in this process (a row that turns out to be
another process's sends the chat's later rows back to be read again, not stored here).

While a person is waiting, every text they send is taken as the passphrase except
``/batal``. A crash after the message was stored loses the passphrase with the
process memory: the row holds only :data:`REDACTED`, the handler finds nothing to
take and asks for the passphrase again.

The signature itself is a background job (``handlers.signoff``, a compile job of kind
"tte_signed"): the passphrase's update only records it and commits. The passphrase goes
with the job in memory only (:meth:`hold`, under the job's id and a random nonce kept
in the job's payload, never the passphrase), until the job has called the gateway and
ended (:meth:`forget`). A job whose passphrase is not in memory (the process died
before it ran) ends by asking the signer to press "Tandatangani" and type it again.
"""
from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any

PASSPHRASE = "tte_pass"  # the conversation kind of "waiting for the TTE passphrase"
REDACTED = "[passphrase TTE - tidak disimpan]"
CANCEL = ("/batal",)
HOLD_SECONDS = 30 * 60  # a passphrase held for a job that never came is forgotten then


class SecretInput:
    def __init__(self) -> None:
        self._held: dict[int, str] = {}  # update id -> the secret text, memory only
        self._expected: set[int] = set()  # Telegram user ids asked, not yet committed
        self._asked: set[int] = set()  # every Telegram user id this process ever asked
        # job id -> (nonce, the secret, when held): a signature job's passphrase
        self._jobs: dict[int, tuple[str, str, float]] = {}

    # -- the handler that asks -----------------------------------------------------
    def expect(self, user_id: int) -> None:
        """The bot is about to ask ``user_id`` for a secret (call before sending)."""
        self._expected.add(user_id)
        self._asked.add(user_id)

    def ever_asked(self, user_id: int) -> bool:
        """Whether this process asked ``user_id`` for a secret since it started (the
        mark of :meth:`expect` is never cleared here: the signers are a few people)."""
        return user_id in self._asked

    def settle(self, user_id: int | None) -> None:
        """An update of ``user_id`` has committed (or failed): if it asked, the database
        says it now. Only that person's mark goes: updates of other people commit
        meanwhile (the intake runs people in parallel)."""
        if user_id is not None:
            self._expected.discard(user_id)

    def expected(self) -> frozenset[int]:
        return frozenset(self._expected)

    # -- the intake ----------------------------------------------------------------
    @staticmethod
    def candidate(update) -> int | None:
        """The sender's Telegram id when ``update`` is a private text message that
        could be a secret (anything but /batal), else None."""
        msg = update.message
        if msg is None or msg.text is None or msg.from_user is None:
            return None
        if msg.chat.type != "private":
            return None
        if _cancels(msg.text):
            return None
        return msg.from_user.id

    @staticmethod
    def candidate_payload(payload: dict[str, Any]) -> int | None:
        """:meth:`candidate` of a stored payload that is not redacted yet (the check
        before processing, in whichever process processes the row)."""
        msg = payload.get("message")
        if not isinstance(msg, dict):
            return None
        text, sender = msg.get("text"), (msg.get("from") or {}).get("id")
        if not isinstance(text, str) or text == REDACTED or sender is None:
            return None
        if (msg.get("chat") or {}).get("type") != "private" or _cancels(text):
            return None
        return sender

    def redact(self, update_id: int, payload: dict[str, Any], *,
               keep: bool = True) -> dict[str, Any]:
        """The payload to store: the text replaced; the text kept in memory (not when
        ``keep`` is False: :meth:`keep` later, once the row is known to be new)."""
        if keep:
            self.keep(update_id, payload)
        payload = copy.deepcopy(payload)
        message = payload["message"]
        message["text"] = REDACTED
        for key in ("entities", "link_preview_options", "quote"):
            message.pop(key, None)
        replied = message.get("reply_to_message")
        if isinstance(replied, dict) and not (replied.get("from") or {}).get("is_bot"):
            # a reply to the person's own earlier message: that text may be a secret too
            replied["text"] = REDACTED
            replied.pop("entities", None)
        return payload

    def keep(self, update_id: int, payload: dict[str, Any]) -> None:
        """Hold the text of ``payload`` (as Telegram sent it) for its handler."""
        self._held[update_id] = payload["message"].get("text", "")

    # -- the handler that reads ----------------------------------------------------
    def take(self, update_id: int) -> str | None:
        """The secret of this update; None when it is not in memory (the process
        restarted since the message was stored). It stays held until the update is
        processed (:meth:`drop`): a run of the update that is rolled back and run again
        (the intake's first run has no savepoints) reads it again."""
        return self._held.get(update_id)

    def drop(self, update_id: int) -> None:
        """The update is processed: whatever its handler did not take is forgotten."""
        self._held.pop(update_id, None)

    # -- the signature job ---------------------------------------------------------
    def hold(self, job_id: int, nonce: str, secret: str) -> None:
        """Keep ``secret`` for the job ``job_id`` (recorded, not yet committed, by the
        update that read it). ``nonce`` is kept in the job's payload: a job id that the
        database gives again after a rollback never finds another job's secret."""
        now = time.monotonic()
        for old in [j for j, (_n, _s, at) in self._jobs.items() if now - at > HOLD_SECONDS]:
            del self._jobs[old]  # a job whose update never committed
        self._jobs[job_id] = (nonce, secret, now)

    def held(self, job_id: int, nonce: str | None) -> str | None:
        """The secret of the job, or None when this process does not hold it (another
        process read it, or this one restarted since)."""
        found = self._jobs.get(job_id)
        if found is None or not nonce or found[0] != nonce:
            return None
        return found[1]

    def forget(self, job_id: int) -> None:
        """The job has ended (or stopped): its secret is forgotten."""
        self._jobs.pop(job_id, None)

    def __repr__(self) -> str:  # never the secrets
        return (f"<SecretInput holding {len(self._held)} secret(s), "
                f"{len(self._jobs)} for signature jobs>")


def _cancels(text: str) -> bool:
    """``/batal`` (or ``/batal@bot``): the one text that is never a secret."""
    return text.strip().split("@", 1)[0].lower() in CANCEL


class _NoUpdateContents(logging.Filter):
    """PTB logs, at DEBUG, the return value of every ``getUpdates``: the people's
    messages as Telegram sent them, a passphrase included, before the intake could
    redact it. Those lines keep the endpoint and the update ids only."""

    def filter(self, record: logging.LogRecord) -> bool:
        # the token's redaction (bot/telegram/app.py) formats every record when it is made
        message = record.getMessage()
        if message.startswith(_GET_UPDATES):
            ids = re.findall(r"'update_id': (\d+)", message)
            record.msg = f"{_GET_UPDATES} finished: update ids {', '.join(ids) or '-'} " \
                         "(contents not logged)"
            record.args = ()
        return True


_GET_UPDATES = "Call to Bot API endpoint `getUpdates`"
_FILTER = _NoUpdateContents()


class _NoInboxPayloads(logging.Filter):
    """aiosqlite logs, at DEBUG, every statement it runs with its parameters: storing an
    inbox row logs the person's message as Telegram sent it (a passphrase stored by a
    process that did not know it was one, before the check at processing redacts it).
    Those lines keep the statement without its parameters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        found = _INBOX_WRITE.search(message)
        if found is not None:
            record.msg = f"{message.split(' ', 1)[0]} {found.group(0).strip()} " \
                         "(parameters not logged)"
            record.args = ()
        return True


_INBOX_WRITE = re.compile(r"(INSERT INTO inbox|UPDATE inbox SET payload)[^'\"]*")
_DRIVER_FILTER = _NoInboxPayloads()


def quiet_update_contents() -> None:
    """Install :class:`_NoUpdateContents` on PTB's bot loggers and
    :class:`_NoInboxPayloads` on the SQLite driver's (idempotent)."""
    for name, log_filter in (("telegram.Bot", _FILTER), ("telegram.ext.ExtBot", _FILTER),
                             ("aiosqlite", _DRIVER_FILTER)):
        logger = logging.getLogger(name)
        if log_filter not in logger.filters:
            logger.addFilter(log_filter)

"""The engine's errors: a move the SOP does not allow now, and nothing was changed.
Each carries its Indonesian message (a text key of ``bot/texts.py``)."""
from __future__ import annotations

from bot.texts import t


class WorkflowError(Exception):
    """A move the SOP does not allow now; nothing has been changed."""

    key = "err.generic"

    def __init__(self, message: str | None = None, **params: object) -> None:
        self.params = params
        self.message = message or t(self.key, **params)
        super().__init__(self.message)


class NotAllowed(WorkflowError):
    key = "err.not_allowed"


class NotAssignee(NotAllowed):
    key = "err.not_assignee"


class WrongState(WorkflowError):
    key = "err.wrong_state"


class StaleAction(WrongState):
    key = "err.stale_button"


class NotFound(WorkflowError):
    key = "err.not_found"


class InvalidInput(WorkflowError):
    key = "err.generic"

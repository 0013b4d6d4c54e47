"""SQLAlchemy 2 typed models of the SOP bot; Alembic migrations in ``migrations/``."""
from models.administration import ActingAppointment, ActingKind
from models.base import Base, utcnow
from models.documents import (
    Approval,
    CompileJob,
    Delivery,
    Document,
    LetterCounter,
    LetterNumber,
    StoredFile,
)
from models.indicators import Indicator, Target
from models.intake import GroupChat, Inbox
from models.organisation import Invitation, Office, Person, Unit
from models.records import AuditHead, AuditLog, Outbox, ReceiptReminder, Reminder
from models.workflow import (
    Conversation, Cycle, CycleIndicator, Evidence, ItemToken, ReturnedAnswer, StepRun, Submission,
)

__all__ = [
    "ActingAppointment", "ActingKind", "Approval", "AuditHead", "AuditLog", "Base", "CompileJob", "Conversation", "Cycle", "CycleIndicator",
    "Delivery", "Document", "Evidence", "GroupChat", "Inbox", "Indicator", "ItemToken", "Invitation", "LetterCounter",
    "LetterNumber", "Office", "Outbox", "Person", "ReceiptReminder", "Reminder", "StepRun",
    "ReturnedAnswer", "StoredFile", "Submission", "Target", "Unit", "utcnow",
]

"""A cycle of the SOP, its step runs, the indicators asked and the answers given."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DDL, ForeignKey, Index, JSON, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, enum_column, utcnow
from models.enums import CycleKind, CycleStatus, Role, StepStatus


class Cycle(Base):
    """One run of the SOP for one period (a quarter or a year)."""

    __tablename__ = "cycle"
    __table_args__ = (UniqueConstraint("office_id", "kind", "year", "quarter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    kind: Mapped[CycleKind] = mapped_column(enum_column(CycleKind))
    year: Mapped[int]
    quarter: Mapped[int] = mapped_column(default=0)  # 0 for an annual cycle
    document_type: Mapped[str] = mapped_column(String(100), default="Pengukuran Kinerja")
    status: Mapped[CycleStatus] = mapped_column(
        enum_column(CycleStatus), default=CycleStatus.ACTIVE
    )
    instruction: Mapped[str] = mapped_column(Text, default="")
    letter_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    started_by_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


class StepRun(Base):
    """One person's turn at one step of a cycle (step 4 runs once per bidang)."""

    __tablename__ = "step_run"
    __table_args__ = (
        Index("ix_step_run_open_due", "status", "due_at"),
        Index("ix_step_run_cycle_step", "cycle_id", "step_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    step_no: Mapped[int]
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    status: Mapped[StepStatus] = mapped_column(enum_column(StepStatus), default=StepStatus.OPEN)
    round: Mapped[int] = mapped_column(default=1)  # 2 after one return, ...
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    note: Mapped[str] = mapped_column(Text, default="")


class CycleIndicator(Base):
    """An indicator asked of a bidang in a cycle, with the target of the period."""

    __tablename__ = "cycle_indicator"
    # a bidang's items in order, read at every data-entry update (bot.core.data_entry)
    __table_args__ = (UniqueConstraint("cycle_id", "indicator_id"),
                      Index("ix_cycle_indicator_bidang", "cycle_id", "unit_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicator.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    position: Mapped[int] = mapped_column(default=0)
    target: Mapped[Decimal | None]
    target_text: Mapped[str | None] = mapped_column(String(200))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class ItemToken(Base):
    """A random token of a cycle's items as the data entry reads them (its
    ``cycle_indicator`` rows and their ``indicator`` rows), written anew by the
    database's own triggers at every change of those rows (:func:`item_token_ddl`), in
    the transaction of the change. A process keeps a bidang's items read at one token
    and reads them again when the token differs (``bot.core.data_entry``): a change made
    by any code or any process is seen at the next update, and a change rolled back
    leaves a token nobody sees again (a counter would come back to a value already
    seen). No row: the cycle never had items (migration 0013 gave one to every cycle
    that had items then)."""

    __tablename__ = "item_token"

    cycle_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(40))


# the statements that write a cycle's token, by dialect: an upsert of a new random token
_TOUCH_SQLITE = ("INSERT OR REPLACE INTO item_token (cycle_id, token) "
                 "SELECT {cycles}, lower(hex(randomblob(16))){where}")
_TOUCH_PG = ("INSERT INTO item_token (cycle_id, token) "
             "SELECT {cycles}, md5(random()::text || clock_timestamp()::text){where} "
             "ON CONFLICT (cycle_id) DO UPDATE SET token = EXCLUDED.token")
_OF_INDICATOR = (" FROM (SELECT DISTINCT cycle_id FROM cycle_indicator"
                 " WHERE indicator_id = {row}.id) AS used")
# each trigger: its name, the change it follows, its table
_ITEM_TOKEN_TRIGGERS = (("item_token_ci_insert", "INSERT", "cycle_indicator"),
                        ("item_token_ci_update", "UPDATE", "cycle_indicator"),
                        ("item_token_ci_delete", "DELETE", "cycle_indicator"),
                        ("item_token_ind_update", "UPDATE", "indicator"),
                        ("item_token_ind_delete", "DELETE", "indicator"))
ITEM_TOKEN_TRIGGERS = tuple(name for name, _op, _table in _ITEM_TOKEN_TRIGGERS)


def _sqlite_touches(op: str, table: str) -> list[str]:
    """What a SQLite trigger writes: the token of the item's cycle before and after
    the change (an update may move the item), or of every cycle that asks the
    indicator."""
    if table == "cycle_indicator":
        return [_TOUCH_SQLITE.format(cycles=f"{row}.cycle_id", where="")
                for row, none_at in (("OLD", "INSERT"), ("NEW", "DELETE")) if op != none_at]
    row = "OLD" if op == "DELETE" else "NEW"
    return [_TOUCH_SQLITE.format(cycles="cycle_id", where=_OF_INDICATOR.format(row=row))]


def item_token_ddl(dialect: str) -> list[str]:
    """The triggers that keep :class:`ItemToken` (and, on PostgreSQL, their function):
    created with the table (``create_all``) and by migration 0013."""
    if dialect == "postgresql":
        touch = _TOUCH_PG
        body = "\n".join([
            "CREATE OR REPLACE FUNCTION item_token_touch() RETURNS trigger AS $$",
            "BEGIN",
            "  IF TG_TABLE_NAME = 'cycle_indicator' THEN",
            "    IF TG_OP <> 'INSERT' THEN "
            + touch.format(cycles="OLD.cycle_id", where="") + "; END IF;",
            "    IF TG_OP <> 'DELETE' THEN "
            + touch.format(cycles="NEW.cycle_id", where="") + "; END IF;",
            "  ELSIF TG_OP = 'DELETE' THEN "
            + touch.format(cycles="used.cycle_id", where=_OF_INDICATOR.format(row="OLD")) + ";",
            "  ELSE " + touch.format(cycles="used.cycle_id",
                                     where=_OF_INDICATOR.format(row="NEW")) + ";",
            "  END IF;",
            "  RETURN NULL;",
            "END $$ LANGUAGE plpgsql",
        ])
        return [body] + [f"CREATE TRIGGER {name} AFTER {op} ON {table} FOR EACH ROW "
                         "EXECUTE FUNCTION item_token_touch()"
                         for name, op, table in _ITEM_TOKEN_TRIGGERS]
    return [f"CREATE TRIGGER {name} AFTER {op} ON {table} "
            f"BEGIN {'; '.join(_sqlite_touches(op, table))}; END"
            for name, op, table in _ITEM_TOKEN_TRIGGERS]


def drop_item_token_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}"
                for name, _op, table in _ITEM_TOKEN_TRIGGERS] \
            + ["DROP FUNCTION IF EXISTS item_token_touch()"]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in ITEM_TOKEN_TRIGGERS]


def _create_item_token_triggers(metadata, connection, tables=(), **kw) -> None:
    """``create_all``: the triggers, once their three tables are there (the token's has
    no foreign key, so it may be created before the others)."""
    if {"item_token", "cycle_indicator", "indicator"} <= {t.name for t in tables}:
        for statement in item_token_ddl(connection.dialect.name):
            connection.execute(DDL(statement))


event.listen(Base.metadata, "after_create", _create_item_token_triggers)


class Submission(Base):
    """One revision of an answer for an indicator in a cycle; never overwritten."""

    __tablename__ = "submission"
    __table_args__ = (UniqueConstraint("cycle_id", "indicator_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicator.id"))
    revision: Mapped[int]
    raw_text: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[Decimal | None]
    value_text: Mapped[str | None] = mapped_column(Text)
    skipped: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # analysis of the value (LKjIP "analisis capaian"), asked after a value under or
    # over the target (issue 13); carried into the revisions that keep the value
    penghambat: Mapped[str] = mapped_column(Text, default="", server_default="")
    upaya: Mapped[str] = mapped_column(Text, default="", server_default="")
    pendukung: Mapped[str] = mapped_column(Text, default="", server_default="")


class ReturnedAnswer(Base):
    """One answer the Kasubag sent back for correction, with the note for it: the
    collect run ``run_id`` (the bidang's new round) asks only the returned answers."""

    __tablename__ = "returned_answer"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("cycle_indicator.id"))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submission.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    # who corrects it: the staf who answered it, else the Kabid (the run's holder)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class Evidence(Base):
    """A file attached to a submission as evidence (bukti dukung)."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("stored_file.id"))
    # who added it: the upload quota is per person per cycle (None before migration 0002)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class Conversation(Base):
    """Where a person is in a guided conversation, so a restart resumes it."""

    __tablename__ = "conversation"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    message_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

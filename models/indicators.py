"""Performance indicators (indikator kinerja) and their targets."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, enum_column
from models.enums import IndicatorLevel, LowerFormula, Polarity, ValueType


class Indicator(Base):
    __tablename__ = "indicator"
    __table_args__ = (UniqueConstraint("office_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    code: Mapped[str] = mapped_column(String(40))
    level: Mapped[IndicatorLevel] = mapped_column(enum_column(IndicatorLevel))
    sasaran: Mapped[str] = mapped_column(Text, default="")  # the sasaran/program it serves
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text, default="")  # penjelasan / formulasi
    unit_of_measure: Mapped[str] = mapped_column(String(60), default="")
    polarity: Mapped[Polarity] = mapped_column(enum_column(Polarity), default=Polarity.HIGHER)
    lower_formula: Mapped[LowerFormula] = mapped_column(
        enum_column(LowerFormula), default=LowerFormula.MIRROR
    )
    value_type: Mapped[ValueType] = mapped_column(enum_column(ValueType), default=ValueType.NUMERIC)
    cumulative: Mapped[bool] = mapped_column(default=False)
    # how "s.d. triwulan" is built from the quarters: "sum", "last" or "average";
    # None = the default of the cumulative flag (models.indicators.aggregation_of)
    aggregation: Mapped[str | None] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class Target(Base):
    """A target for a year: period 0 is the annual target, 1-4 the quarters."""

    __tablename__ = "target"
    __table_args__ = (UniqueConstraint("indicator_id", "year", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicator.id"))
    year: Mapped[int]
    period: Mapped[int] = mapped_column(default=0)
    value: Mapped[Decimal | None]
    value_text: Mapped[str | None] = mapped_column(String(200))


def default_aggregation(cumulative: bool) -> str:
    """The aggregation of an indicator that names none.

    A cumulative indicator's figure already counts from the start of the year (the
    set-up workbook's "Kumulatif: Ya", TW III includes TW I-II), so "s.d." is the last
    figure; a non-cumulative one is measured per quarter against its quarter's target,
    which is also the last figure. Both keep what offices type today; an office that
    enters each quarter's own count chooses "sum" (or "average") explicitly.
    """
    return "last"


def aggregation_of(indicator: Indicator) -> str:
    return indicator.aggregation or default_aggregation(indicator.cumulative)

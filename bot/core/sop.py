"""The SOP as data: load and validate the step definition file (TOML).

The engine knows a handful of step kinds and interprets this file, so another SOP in
the same Permenpan format runs without code changes.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot import callbacks
from bot.texts import t
from models.enums import Role

PACKAGED_DEFINITION = Path(__file__).resolve().parents[1] / "data" / "sop_pengumpulan_data_kinerja.toml"

class StepKind(StrEnum):
    """The handful of step kinds the engine knows (the definition file names one per
    step). A ``StrEnum``: a kind compares equal to its name in the file."""
    DISPOSE = "dispose"
    COORDINATE = "coordinate"
    COLLECT = "collect"
    PROCESS = "process"
    COMPILE = "compile"
    REVIEW = "review"
    SIGN = "sign"
    NUMBER = "number"
    ARCHIVE = "archive"
    DELIVER = "deliver"


STEP_KINDS = tuple(k.value for k in StepKind)


@dataclass(frozen=True)
class StepButton:
    """The button that does a step's work: its callback action and its label's text key.
    ``on_document``: it acts on the current document version (which its callback data
    carries) and comes with a "Kembalikan" button."""
    action: str
    label: str
    on_document: bool = False


# The one table of each step kind's button: the step's card, /tugas and reminders all
# take it from here.
STEP_BUTTONS: dict[StepKind, StepButton] = {
    StepKind.DISPOSE: StepButton("dsp", "b.accept_forward"),
    StepKind.COORDINATE: StepButton("crd", "b.coordinate"),
    StepKind.COLLECT: StepButton("ent", "b.start_entry"),
    StepKind.PROCESS: StepButton("proc", "b.process_done"),
    StepKind.COMPILE: StepButton("cmp", "b.compile"),
    StepKind.REVIEW: StepButton("prf", "b.paraf", on_document=True),
    StepKind.SIGN: StepButton("sgn", "b.sign", on_document=True),
    StepKind.NUMBER: StepButton("num", "b.number"),
    StepKind.ARCHIVE: StepButton("arc", "b.archive"),
    StepKind.DELIVER: StepButton("task", "b.deliver"),
}


def step_buttons(kind: str, run_id: int, document_id: int | None = None
                 ) -> list[list[tuple[str, str]]]:
    """The keyboard of an open step of ``kind``: its button (and "Kembalikan" on a
    document); a document step without a document gets the plain "Buka tugas"."""
    button = STEP_BUTTONS.get(StepKind(kind)) if kind in STEP_KINDS else None
    if button is None or button.on_document and document_id is None:
        return [[(t("b.open_task"), callbacks.encode("task", run_id))]]
    if button.on_document:
        return [[(t(button.label), callbacks.encode(button.action, run_id, document_id)),
                 (t("b.return"), callbacks.encode("ret", run_id, document_id))]]
    return [[(t(button.label), callbacks.encode(button.action, run_id))]]
SOP_ROLES = (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID, Role.STAF)

_UNITS = {
    "menit": "minutes", "mnt": "minutes", "minute": "minutes", "minutes": "minutes",
    "jam": "hours", "hour": "hours", "hours": "hours",
    "hari": "days", "day": "days", "days": "days",
}
_TIME_RE = re.compile(
    r"^\s*(\d{1,3})\s*(?:(?:-|–|s\.?d\.?|sampai)\s*(\d{1,3}))?\s*([a-zA-Z]+)\s*$"
)


class SopDefinitionError(ValueError):
    """The definition file is broken; the message names the step and the field."""


class Calendar(Protocol):
    def add_working_minutes(self, dt: datetime, minutes: int) -> datetime: ...
    def add_working_days(self, dt: datetime, days: int) -> datetime: ...


@dataclass(frozen=True)
class TimeStandard:
    """A time standard as the SOP writes it: "05 menit", "1-5 hari"."""

    text: str
    minimum: int
    maximum: int
    unit: str  # minutes | hours | days

    @classmethod
    def parse(cls, text: str) -> "TimeStandard":
        m = _TIME_RE.match(text or "")
        if not m:
            raise ValueError(f"waktu '{text}' tidak dapat dibaca (contoh: '05 menit', '1-5 hari')")
        lo, hi, unit_word = m.groups()
        unit = _UNITS.get(unit_word.lower())
        if unit is None:
            raise ValueError(f"satuan waktu '{unit_word}' tidak dikenal (menit, jam, hari)")
        low = int(lo)
        high = int(hi) if hi else low
        if high < low or high == 0:
            raise ValueError(f"waktu '{text}': batas atas harus >= batas bawah dan > 0")
        return cls(text=text.strip(), minimum=low, maximum=high, unit=unit)

    def working_minutes(self, value: int, day_minutes: int) -> int:
        factor = {"minutes": 1, "hours": 60, "days": day_minutes}[self.unit]
        return value * factor

    def max_minutes(self, day_minutes: int) -> int:
        return self.working_minutes(self.maximum, day_minutes)

    def due(self, calendar: Calendar, start: datetime, value: int | None = None) -> datetime:
        """The deadline from ``start`` in working time (the maximum unless given)."""
        n = self.maximum if value is None else value
        if self.unit == "days":
            return calendar.add_working_days(start, n)
        return calendar.add_working_minutes(start, n * (60 if self.unit == "hours" else 1))


@dataclass(frozen=True)
class Step:
    number: int
    key: str
    kind: StepKind
    role: Role
    activity: str
    inputs: tuple[str, ...]
    time: TimeStandard
    output: str
    return_to: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class SopDefinition:
    name: str
    decree: str
    document_title: str
    steps: tuple[Step, ...]

    def step(self, number: int) -> Step:
        return self.steps[number - 1]

    def first_of_kind(self, kind: str) -> Step:
        for s in self.steps:
            if s.kind == kind:
                return s
        raise KeyError(kind)

    def next_step(self, number: int) -> Step | None:
        return self.steps[number] if number < len(self.steps) else None

    @property
    def total_text(self) -> str:
        days = sum(s.time.maximum for s in self.steps if s.time.unit == "days")
        minutes = sum(
            s.time.working_minutes(s.time.maximum, 0) for s in self.steps if s.time.unit != "days"
        )
        hours, mins = divmod(minutes, 60)
        return f"{days} hari {hours} jam {mins} menit"


def _field(raw: dict, name: str, where: str, kind: type, required: bool = True):
    if name not in raw:
        if required:
            raise SopDefinitionError(f"{where}: kolom '{name}' wajib diisi")
        return None
    value = raw[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise SopDefinitionError(f"{where}: kolom '{name}' harus {kind.__name__}")
    return value


def parse_definition(data: dict, source: str = "definisi SOP") -> SopDefinition:
    head = data.get("sop")
    if not isinstance(head, dict):
        raise SopDefinitionError(f"{source}: bagian [sop] tidak ada")
    name = _field(head, "name", f"{source} [sop]", str)
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SopDefinitionError(f"{source}: tidak ada [[step]]")
    steps: list[Step] = []
    keys: set[str] = set()
    known = {"number", "key", "kind", "role", "activity", "inputs", "time", "output",
             "return_to", "unit"}
    for i, raw in enumerate(raw_steps, start=1):
        where = f"{source} langkah ke-{i}"
        if not isinstance(raw, dict):
            raise SopDefinitionError(f"{where}: harus tabel")
        number = _field(raw, "number", where, int)
        where = f"{source} langkah {number}"
        for k in raw:
            if k not in known:
                raise SopDefinitionError(f"{where}: kolom '{k}' tidak dikenal")
        if number != i:
            raise SopDefinitionError(f"{where}: kolom 'number' harus {i} (berurutan)")
        key = _field(raw, "key", where, str)
        if key in keys:
            raise SopDefinitionError(f"{where}: kolom 'key' '{key}' sudah dipakai")
        keys.add(key)
        kind = _field(raw, "kind", where, str)
        if kind not in STEP_KINDS:
            raise SopDefinitionError(
                f"{where}: kolom 'kind' '{kind}' tidak dikenal ({', '.join(STEP_KINDS)})"
            )
        role_text = _field(raw, "role", where, str)
        try:
            role = Role(role_text)
        except ValueError:
            role = None
        if role not in SOP_ROLES:
            raise SopDefinitionError(f"{where}: kolom 'role' '{role_text}' tidak dikenal")
        try:
            time = TimeStandard.parse(_field(raw, "time", where, str))
        except ValueError as exc:
            raise SopDefinitionError(f"{where}: kolom 'time': {exc}") from None
        inputs = _field(raw, "inputs", where, list, required=False) or []
        if not all(isinstance(x, str) for x in inputs):
            raise SopDefinitionError(f"{where}: kolom 'inputs' harus daftar teks")
        return_to = _field(raw, "return_to", where, int, required=False)
        if return_to is not None and not 1 <= return_to < number:
            raise SopDefinitionError(
                f"{where}: kolom 'return_to' harus menunjuk langkah sebelumnya"
            )
        unit = _field(raw, "unit", where, str, required=False)
        if unit not in (None, "sekretariat"):
            raise SopDefinitionError(f"{where}: kolom 'unit' hanya boleh 'sekretariat'")
        steps.append(
            Step(
                number=number, key=key, kind=StepKind(kind), role=role,
                activity=_field(raw, "activity", where, str),
                inputs=tuple(inputs), time=time,
                output=_field(raw, "output", where, str),
                return_to=return_to, unit=unit,
            )
        )
    kinds = [s.kind for s in steps]
    if kinds.count("collect") != 1:
        raise SopDefinitionError(f"{source}: harus ada tepat satu langkah kind = 'collect'")
    if kinds[0] != "dispose":
        raise SopDefinitionError(f"{source} langkah 1: kolom 'kind' harus 'dispose'")
    return SopDefinition(
        name=name,
        decree=str(head.get("decree", "")),
        document_title=str(head.get("document_title", name)),
        steps=tuple(steps),
    )


def load_definition(path: str | Path | None = None) -> SopDefinition:
    p = Path(path) if path else PACKAGED_DEFINITION
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SopDefinitionError(f"{p}: berkas definisi SOP tidak ditemukan") from None
    except tomllib.TOMLDecodeError as exc:
        raise SopDefinitionError(f"{p}: TOML tidak sah: {exc}") from None
    return parse_definition(data, source=p.name)

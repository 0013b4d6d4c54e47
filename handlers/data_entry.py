"""Step 4: guided data entry for the Kabid and the staf of a bidang.

One indicator at a time, in ONE card message that is edited in place; the card's
message id, the current indicator, a value waiting for confirmation and the state live in
the ``conversation`` row (kind ``entry``), so a restart resumes at the same question.

States of the conversation:

    ask       the card asks the current indicator; text is the answer; a photo/document
              sent before the value waits in ``data["early"]`` and is attached to it
    confirm   an implausible value waits for "Ya, benar" / "Ulangi", an ambiguous number
              for one button per reading ("epick") (``data["pending"]``); nothing saved
    evidence  the answer is saved; a photo/document is evidence, "Lanjut" moves on, and
              a value typed here is the next indicator's answer. After a value under the
              target the card asks the hindering factor, then the follow-up plan (above
              the target: the supporting factor), the questions left in ``data["why"]``:
              a typed sentence answers the first, "Lewati pertanyaan" skips it; a typed
              number is never an analysis answer: it is the next indicator's value
              (optional questions left unanswered) or, when the config makes them
              mandatory, refused with a hint
    note      waiting for a note on the saved answer
    summary   every indicator with its value; Kirim ke Kasubag (Kabid) / Selesai (staf)
    assign    the Kabid hands indicators to staf of the bidang

UX decisions:
* Every answer is committed (``Workflow.record_answer``) before the card says so.
* Buttons edit the card in place. A typed answer, a note or a file arrives *below* the
  card, so the reply to it is a new card (the old card loses its buttons and stays as a
  record); the next question then edits that card.
* Every card button must come from the person's current card and fit the state;
  anything else (an older card, a finished step, forged data) is "tombol ini sudah tidak
  berlaku" and changes nothing.
* "Lewati" records an explicit skipped revision; "Kirim ke Kasubag" is refused while an
  indicator is neither answered nor skipped (the engine checks it).
* Evidence: photos and PDF / Word / Excel / PowerPoint documents (checked by name and by
  content); ZIP archives are refused (the Kasubag must be able to open every file on a
  phone). A note is added with the "Tambah catatan" button; both make a new revision
  or an Evidence row, never an overwrite. A new value keeps the evidence of the answer
  it replaces (a corrected figure is usually backed by the same document).
* A returned bidang starts again at the first indicator, the earlier answers shown and
  kept with "Tetap: <nilai>". When the Kasubag returned single answers, the run asks
  only those (the Kabid all of them, a staf the ones they answered), each card showing
  the Kasubag's note; "Tetap" on one of them asks its analysis again (the note may be
  about the analysis, not the number).
* After the Kabid hands an indicator to a staf the card moves on to the next unanswered
  indicator that is still the Kabid's; a fresh start (after "Batal" or /batal) begins at
  the first unanswered one not handed over. The plausibility and reading rules are the
  core's (``bot.core.entry_rules``).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from decimal import Decimal

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.core import entry_rules
from bot import callbacks
from bot import render as renderer
from bot.core.periods import entry_lines
from handlers.markup import keyboard_dict, show_card
from bot.core.storage import FileTooLarge
from bot.texts import Raw, period_label, t
from bot.core.uploads import check_quota
from bot.core.data_entry import (
    Entry, ItemView, evidence_count, evidence_counts, evidence_ids, load_entry,
    previous_realisation, staff_done, staff_of,
)
from bot.core.workflow import (
    InvalidInput, NotAllowed, NotAssignee, StaleAction, Workflow,
)
from handlers.common import (
    Context, FileTooBig, action, clear_conversation, download, file_route, get_conversation,
    reply, services, set_conversation, text_route, transaction, typed_text,
)
from models import (
    Conversation, Indicator, Person, Submission,
)
from models.enums import Role, ValueType
from reports.numbers import (
    NumberParseError, format_number, format_percent, format_rupiah, parse_number, terbilang,
)

ENTRY = "entry"
MAX_TEXT = 200
MAX_NOTE = 500
MAX_WHY = 300  # one short answer per analysis question
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile limit

# evidence types: extension -> accepted MIME types and the content check
OOXML = "application/vnd.openxmlformats-officedocument."
EVIDENCE_TYPES: dict[str, tuple[frozenset[str], str]] = {
    ".jpg": (frozenset({"image/jpeg"}), "jpeg"),
    ".jpeg": (frozenset({"image/jpeg"}), "jpeg"),
    ".png": (frozenset({"image/png"}), "png"),
    ".webp": (frozenset({"image/webp"}), "webp"),
    ".pdf": (frozenset({"application/pdf"}), "pdf"),
    ".doc": (frozenset({"application/msword"}), "ole"),
    ".xls": (frozenset({"application/vnd.ms-excel"}), "ole"),
    ".ppt": (frozenset({"application/vnd.ms-powerpoint"}), "ole"),
    ".docx": (frozenset({OOXML + "wordprocessingml.document"}), "ooxml"),
    ".xlsx": (frozenset({OOXML + "spreadsheetml.sheet"}), "ooxml"),
    ".pptx": (frozenset({OOXML + "presentationml.presentation"}), "ooxml"),
    ".odt": (frozenset({"application/vnd.oasis.opendocument.text"}), "odf"),
    ".ods": (frozenset({"application/vnd.oasis.opendocument.spreadsheet"}), "odf"),
}
GENERIC_MIME = {"application/octet-stream", "", None}


# ----------------------------------------------------------------- loading and checks
async def entry_conversation(session, entry: Entry, update: Update,
                             states: tuple[str, ...] = ()) -> Conversation:
    """The person's entry conversation for this run, pressed on its current card."""
    conv = await get_conversation(session, entry.person.id)
    if conv is None or conv.kind != ENTRY or (conv.data or {}).get("run") != entry.run.id:
        raise StaleAction()
    query = update.callback_query
    if query is not None and (query.message is None
                              or query.message.message_id != conv.message_id):
        raise StaleAction()
    if states and conv.state not in states:
        raise StaleAction()
    return conv


def current_item(entry: Entry, data: dict) -> ItemView:
    item = entry.item(data.get("item"))
    if item is None:
        if not entry.items:
            raise NotAssignee(t("e.not_yours"))
        item = entry.items[0]
        data["item"] = item.id
    return item


# ----------------------------------------------------------------- values
def show_value(ind: Indicator, sub: Submission | None) -> str:
    if sub is None:
        return t("e.value_missing")
    if sub.skipped:
        return t("e.value_skipped")
    if ind.value_type == ValueType.TEXT or sub.value is None:
        return sub.value_text or "-"
    return show_number(ind, sub.value)


def show_number(ind: Indicator, value: Decimal) -> str:
    uom = (ind.unit_of_measure or "").strip()
    if ind.value_type == ValueType.PERCENT or uom == "%":
        return format_number(value) + "%"
    if uom.lower() in ("rp", "rupiah"):
        return format_rupiah(value)
    return f"{format_number(value)} {uom}".strip()


def target_text(ind: Indicator, item: ItemView) -> str:
    """The period's target as the card shows it (copied into the cycle at step 3)."""
    if ind.value_type == ValueType.TEXT:
        return item.target_text or "-"
    return show_number(ind, item.target) if item.target is not None else "-"


class Rejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_answer(ind: Indicator, text: str) -> dict:
    """The pending answer as JSON-able data, or ``Rejected`` with an Indonesian message."""
    if ind.value_type == ValueType.TEXT:
        text = typed_text(text)  # nothing visible is no answer; no control characters
        if not text or len(text) > MAX_TEXT:
            raise Rejected(t("e.text_invalid", limit=MAX_TEXT))
        return {"raw": text, "value": None, "text": text, "reading": ""}
    text = (text or "").strip()
    try:
        parsed = parse_number(text)
    except NumberParseError as exc:
        raise Rejected(renderer.esc(exc.message)) from None
    return {"raw": text, "value": str(parsed.value), "text": None,
            "reading": parsed.reading if parsed.ambiguous else "",
            "readings": [str(v) for v in entry_rules.readings(parsed)]}


def implausible(ind: Indicator, pending: dict, prev: Submission | None,
                item: ItemView | None = None) -> list[str]:
    """Why a value looks wrong (asked to confirm, never refused): the rules are the
    core's (``bot.core.entry_rules``)."""
    if pending.get("value") is None:
        return []
    return entry_rules.implausible(
        Decimal(pending["value"]), percent=ind.value_type == ValueType.PERCENT,
        prev=prev.value if prev is not None else None,
        target=item.target if item is not None and ind.value_type != ValueType.TEXT else None,
        show=lambda v: show_number(ind, v))


def needs_question(ind: Indicator, pending: dict, prev: Submission | None,
                   item: ItemView) -> bool:
    """An ambiguous number or an implausible value is asked about before it is saved."""
    return bool(pending.get("readings")) or bool(implausible(ind, pending, prev, item))


async def record(wf: Workflow, entry: Entry, item: ItemView, pending: dict, *,
                 note: str = "", data: dict | None = None,
                 analysis: dict[str, str] | None = None) -> Submission:
    """A new revision; the evidence of the answer it replaces is kept with it, and the
    files sent for this indicator before its value (in ``data``) are attached to it.
    ``analysis``: the penghambat / upaya / pendukung it holds (a new value has none)."""
    prev = await wf.latest_submission(entry.cycle.id, item.indicator_id)
    carry = [] if prev is None or prev.skipped else await evidence_ids(wf.s, prev)
    value = Decimal(pending["value"]) if pending.get("value") is not None else None
    sub = await wf.record_answer(entry.person, entry.run.id, item.id,
                                 raw_text=pending.get("raw", ""), value=value,
                                 value_text=pending.get("text"), note=note,
                                 evidence_file_ids=carry, analysis=analysis, read=item)
    count = len(carry)
    if data is not None:
        for fid in entry_rules.take_pending_evidence(data, item.id, carry):
            await wf.add_evidence(entry.person, entry.run.id, sub.id, fid)
            count += 1
    entry.evidence[sub.id] = count  # the saved card need not count them again
    return sub


async def keep_value(wf: Workflow, entry: Entry, item: ItemView, *,
                     note: str | None = None, analysis: dict[str, str] | None = None
                     ) -> Submission:
    """A revision that keeps the saved value and changes its note or its analysis (the
    rest is carried: note, analysis, evidence)."""
    sub = await wf.latest_submission(entry.cycle.id, item.indicator_id)
    if sub is None or sub.skipped:
        raise StaleAction()
    kept = entry_rules.analysis_of_sub(sub)
    kept.update(analysis or {})
    return await record(wf, entry, item, {"raw": sub.raw_text,
                                          "value": str(sub.value)
                                          if sub.value is not None else None,
                                          "text": sub.value_text},
                        note=sub.note if note is None else note, analysis=kept)


def size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, -(-size // 1024))} KB"
    return f"{size / 1024 / 1024:.1f} MB".replace(".", ",")


def evidence_limit(context: Context) -> int:
    limit = services(context).store.max_bytes
    return min(limit, TELEGRAM_DOWNLOAD_LIMIT) if limit else TELEGRAM_DOWNLOAD_LIMIT


def evidence_limit_from(wf: Workflow) -> int:
    limit = wf.sv.store.max_bytes
    return min(limit, TELEGRAM_DOWNLOAD_LIMIT) if limit else TELEGRAM_DOWNLOAD_LIMIT


# ----------------------------------------------------------------- cards
def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _head(entry: Entry) -> str:
    return t("e.card_head", unit=entry.unit.name,
             period=period_label(entry.cycle.kind, entry.cycle.year, entry.cycle.quarter))


def _progress(entry: Entry, item: ItemView) -> str:
    return t("e.card_progress", no=entry.position(item) + 1, total=len(entry.items))


def _rid(entry: Entry) -> int:
    return entry.run.id


async def question_card(wf: Workflow, entry: Entry, data: dict, head: str = ""
                        ) -> tuple[str, list]:
    item = current_item(entry, data)
    ind = entry.ind(item)
    cycle = entry.cycle
    prev = await previous_realisation(wf, cycle, ind)
    lines = [head] if head else []
    lines += [_head(entry), _progress(entry, item),
              t("e.card_body", name=ind.name, uom=ind.unit_of_measure or "-",
                period=period_label(cycle.kind, cycle.year, cycle.quarter),
                target=target_text(ind, item),
                prev_period=f" ({prev[0]})" if prev else "",
                prev=show_value(ind, prev[1]) if prev else "-",
                definition=_clip(ind.definition or "-", 1000))]
    if entry.is_kabid and item.assigned_to_id:
        staff = await wf.s.get(Person, item.assigned_to_id)
        lines.append(t("e.card_assigned", name=staff.name if staff else "-"))
    back = entry.returned.get(item.id)
    if back is not None:
        lines.append(t("e.returned_note", note=back.note))
    waiting = entry_rules.pending_evidence(data, item.id)
    if waiting:
        lines.append(t("e.evidence_waiting", count=len(waiting)))
    sub = await wf.latest_submission(cycle.id, ind.id)
    rid = _rid(entry)
    buttons: list[list[tuple[str, str]]] = []
    if sub is not None:
        extra = ""
        count = await evidence_count(wf.s, sub)
        if count:
            extra += t("e.summary_evidence", count=count)
        lines.append(t("e.card_current", value=show_value(ind, sub), extra=Raw(extra)))
        buttons.append([(renderer.button_text("e.b_keep", value=show_value(ind, sub)[:28]),
                         callbacks.encode("enext", rid))])
    lines.append("")
    # what to type: the quarter alone or "s.d." it, after the running figure (issue 15)
    lines += ([t("e.ask_text", limit=MAX_TEXT)] if ind.value_type == ValueType.TEXT else
              await entry_lines(wf.s, cycle, ind, lambda v, ind=ind: show_number(ind, v)))
    if sub is not None:
        lines.append(t("e.keep_hint"))
    nav = [(t("e.b_skip"), callbacks.encode("eskip", rid))]
    if entry.position(item) > 0:
        nav.insert(0, (t("e.b_back"), callbacks.encode("eback", rid)))
    buttons.append(nav)
    extra_row = [(t("e.b_summary"), callbacks.encode("esum", rid))]
    if entry.is_kabid:
        extra_row.append((t("e.b_hand"), callbacks.encode("ehand", rid)))
    buttons.append(extra_row)
    buttons.append([(t("e.b_cancel"), callbacks.encode("ecanc", rid))])
    return "\n".join(lines), buttons


async def confirm_card(wf: Workflow, entry: Entry, data: dict, head: str = ""
                       ) -> tuple[str, list]:
    item = current_item(entry, data)
    ind = entry.ind(item)
    pending = data["pending"]
    value = (show_number(ind, Decimal(pending["value"])) if pending.get("value") is not None
             else pending.get("text") or "")
    prev = await previous_realisation(wf, entry.cycle, ind)
    rid = _rid(entry)
    lines = [head] if head else []
    choices = pending.get("readings") or []
    if choices:  # one button per reading of an ambiguous number
        lines += [_head(entry), _progress(entry, item),
                  t("e.ambiguous_head", raw=pending.get("raw", ""), name=ind.name),
                  renderer.esc(pending.get("reading", ""))]
        for no, choice in enumerate(choices):
            why = implausible(ind, dict(pending, value=choice), prev[1] if prev else None,
                              item)
            if why:
                lines.append(f"<b>{renderer.esc(show_number(ind, Decimal(choice)))}</b>:")
                lines += why
        lines += ["", t("e.ambiguous_question")]
        buttons = []
        for no, choice in enumerate(choices):
            shown = show_number(ind, Decimal(choice))
            words = terbilang(Decimal(choice))
            text = (renderer.button_text("e.b_reading", value=shown, words=words) if words
                    else renderer.label(shown))
            buttons.append([(text, callbacks.encode("epick", rid, no))])
        buttons.append([(t("e.b_retry"), callbacks.encode("eno", rid))])
        return "\n".join(lines), buttons
    lines += [_head(entry), _progress(entry, item),
              t("e.confirm_head", name=ind.name, value=value),
              *implausible(ind, pending, prev[1] if prev else None, item)]
    if pending.get("reading"):
        lines.append(renderer.esc(pending["reading"]))
    lines += ["", t("e.confirm_question")]
    return "\n".join(lines), [[(t("e.b_yes"), callbacks.encode("eok", rid)),
                               (t("e.b_retry"), callbacks.encode("eno", rid))]]


async def saved_card(wf: Workflow, entry: Entry, state: str, data: dict, head: str = ""
                     ) -> tuple[str, list]:
    item = current_item(entry, data)
    ind = entry.ind(item)
    sub = await wf.latest_submission(entry.cycle.id, ind.id)
    lines = [head] if head else []
    lines += [_head(entry), _progress(entry, item),
              t("e.saved", name=ind.name, value=show_value(ind, sub))]
    if data.get("reading"):
        lines.append(renderer.esc(data["reading"]))
    if sub is not None and sub.note:
        lines.append(t("e.note_line", note=sub.note))
    for name, text in entry_rules.analysis_of_sub(sub).items():
        lines.append(t("e.why_line", label=t(f"e.why_label_{name}"), text=text))
    count = entry.evidence.get(sub.id) if sub is not None else 0
    if count is None:
        count = await evidence_count(wf.s, sub)
    lines.append(t("e.evidence_count", count=count))
    lines.append("")
    rid = _rid(entry)
    if state == "note":
        lines.append(t("e.note_prompt", name=ind.name, limit=MAX_NOTE))
        return "\n".join(lines), [[(t("e.b_no_note"), callbacks.encode("enext", rid))],
                                  [(t("e.b_cancel"), callbacks.encode("ecanc", rid))]]
    why = data.get("why") or []
    required = bool(why) and entry_rules.analysis_required(wf, why[0])
    buttons = []
    lines.append(t("e.evidence_prompt", limit=size_text(evidence_limit_from(wf))))
    if why:  # an analysis question is open: it comes last, where the eye is
        lines.append("")
        capaian = data.get("cap") or ""
        if why[0] == "pendukung":
            lines.append(t("e.why_above", capaian=capaian))
        elif why[0] == "penghambat":
            lines.append(t("e.why_below", capaian=capaian) if capaian else t("e.why_not_met"))
        lines.append(t(f"e.ask_{why[0]}", limit=MAX_WHY))
        lines.append(t("e.why_mandatory" if required else "e.why_optional"))
        if not required:
            buttons.append([(t("e.b_why_skip"), callbacks.encode("ewhy", rid))])
    if not required:
        buttons.append([(t("e.b_next"), callbacks.encode("enext", rid))])
    buttons.append([(t("e.b_note"), callbacks.encode("enote", rid)),
                    (t("e.b_change"), callbacks.encode("eno", rid))])
    last = []
    if entry.position(item) > 0:
        last.append((t("e.b_back"), callbacks.encode("eback", rid)))
    last.append((t("e.b_cancel"), callbacks.encode("ecanc", rid)))
    buttons.append(last)
    return "\n".join(lines), buttons


async def summary_card(wf: Workflow, entry: Entry, data: dict, head: str = ""
                       ) -> tuple[str, list]:
    """Every indicator with its value, paged (``epage``); the send button on each page."""
    heads = [head] if head else []
    heads.append(t("e.summary_head", unit=entry.unit.name,
                   period=period_label(entry.cycle.kind, entry.cycle.year, entry.cycle.quarter)))
    missing = 0
    lines = []
    latest = await wf.latest_submissions(entry.cycle.id, [i.indicator_id for i in entry.items])
    counts = await evidence_counts(wf.s, latest.values())
    for no, item in enumerate(entry.items, start=1):
        ind = entry.ind(item)
        sub = latest[ind.id]
        missing += sub is None
        count = counts[sub.id] if sub is not None else 0
        assigned = ""
        if entry.is_kabid and item.assigned_to_id:
            staff = await wf.s.get(Person, item.assigned_to_id)
            assigned = f" \u2192 {renderer.esc(staff.name)}" if staff else ""
        lines.append(t("e.summary_line", no=no, name=ind.name, value=show_value(ind, sub),
                       evidence=Raw(t("e.summary_evidence", count=count) if count else ""),
                       assigned=Raw(assigned)))
    if missing:
        foot = t("e.summary_missing", count=missing)
    else:
        foot = t("e.summary_ready_kabid" if entry.is_kabid else "e.summary_ready_staf")
    pg = renderer.page(heads, lines, foot, data.get("page", 0))
    rid = _rid(entry)
    buttons: list[list[tuple[str, str]]] = []
    if entry.is_kabid:
        buttons.append([(t("e.b_send"), callbacks.encode("esend", rid))])
    else:
        buttons.append([(t("e.b_done"), callbacks.encode("edone", rid))])
    edits = [(t("e.b_edit", no=i + 1), callbacks.encode("egoto", rid, entry.items[i].id))
             for i in pg.items]
    buttons += [edits[i:i + 4] for i in range(0, len(edits), 4)]
    nav = renderer.pager("epage", (rid,), pg)
    if nav:
        buttons.append(nav)
    if entry.is_kabid:
        buttons.append([(t("e.b_hand"), callbacks.encode("ehand", rid))])
    buttons.append([(t("e.b_cancel"), callbacks.encode("ecanc", rid))])
    return pg.text, buttons


async def assign_card(wf: Workflow, entry: Entry, data: dict, head: str = ""
                      ) -> tuple[str, list]:
    rid = _rid(entry)
    lines = [head] if head else []
    pick = entry.item(data.get("pick"))
    if pick is not None:
        staff = await staff_of(wf, entry.unit.id)
        lines.append(t("e.assign_choose", name=entry.ind(pick).name))
        if not staff:
            lines.append(t("e.no_staff"))
        buttons = [[(renderer.label(s.name, 40), callbacks.encode("eto", rid, pick.id, s.id))]
                   for s in staff[:renderer.PAGE_ITEMS * 3]]
        buttons.append([(t("e.b_self"), callbacks.encode("eto", rid, pick.id, 0))])
        buttons.append([(t("e.b_back"), callbacks.encode("ehand", rid))])
        return "\n".join(lines), buttons
    lines = []
    for no, item in enumerate(entry.items, start=1):
        ind = entry.ind(item)
        who = t("e.assign_self")
        if item.assigned_to_id:
            staff_person = await wf.s.get(Person, item.assigned_to_id)
            who = staff_person.name if staff_person else who
        lines.append(t("e.assign_line", no=no, name=ind.name, who=who))
    heads = ([head] if head else []) + [t("e.assign_head")]
    pg = renderer.page(heads, lines, (), data.get("page", 0))
    buttons = [[(renderer.label(f"{i + 1}. {entry.ind(entry.items[i]).name}", 40),
                 callbacks.encode("eassign", rid, entry.items[i].id))] for i in pg.items]
    nav = renderer.pager("epage", (rid,), pg)
    if nav:
        buttons.append(nav)
    buttons.append([(t("e.b_summary"), callbacks.encode("esum", rid))])
    return pg.text, buttons


async def render(wf: Workflow, entry: Entry, state: str, data: dict, head: str = ""
                 ) -> tuple[str, list]:
    if state == "summary":
        return await summary_card(wf, entry, data, head)
    if state == "assign":
        return await assign_card(wf, entry, data, head)
    if state == "confirm" and data.get("pending"):
        return await confirm_card(wf, entry, data, head)
    if state in ("evidence", "note"):
        return await saved_card(wf, entry, state, data, head)
    return await question_card(wf, entry, data, head)


async def put_card(update: Update, context: Context, person_id: int, message_id: int | None,
                   text: str, buttons, *, new: bool = False) -> None:
    """Show the card: edit the stored message, or send a new one and remember its id."""
    bot = context.bot
    chat_id = update.effective_chat.id
    markup = keyboard_dict(renderer.labels(buttons))
    intake = context.bot_data.get("intake")
    if intake is not None and intake.defer_card(
            chat_id=chat_id, person_id=person_id, kind=ENTRY, text=text,
            markup=markup, old=message_id, new=new):
        return  # shown after the commit (on a real network: the update runs once)
    shown = await show_card(bot, chat_id, text, markup, old=message_id, new=new)
    if shown == message_id:  # edited in place
        return
    async with transaction(context) as (session, _wf):
        conv = await get_conversation(session, person_id)
        if conv is not None and conv.kind == ENTRY:
            conv.message_id = shown


# ----------------------------------------------------------------- moves
@dataclass
class Move:
    state: str | None  # None: the conversation ends
    data: dict
    head: str = ""
    answer: str | None = None
    final_text: str = ""
    final_buttons: list | None = None


def advance(entry: Entry, data: dict, item: ItemView) -> tuple[str, dict]:
    """After an indicator: the next one, or the summary (also after an "Ubah")."""
    data = {k: v for k, v in data.items() if k in ("run", "item", "review", "page", "early")}
    pos = entry.position(item)
    if data.pop("review", False) or pos + 1 >= len(entry.items):
        return "summary", data
    data["item"] = entry.items[pos + 1].id
    return "ask", data


def ask(data: dict, item_id: int | None = None, **keep) -> dict:
    new = {"run": data["run"], "item": item_id if item_id is not None else data.get("item")}
    if data.get("early"):  # evidence waiting for its value stays with the conversation
        new["early"] = data["early"]
    new.update(keep)
    return new


async def do_skip(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    item = current_item(entry, data)
    await wf.record_answer(entry.person, entry.run.id, item.id, raw_text="", skipped=True,
                           read=item)
    state, data = advance(entry, data, item)
    return Move(state, data, head=t("e.skipped", name=entry.ind(item).name))


async def do_back(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    item = current_item(entry, data)
    pos = entry.position(item)
    if pos == 0:
        return Move("ask", ask(data, item.id), answer=t("e.first_item"))
    return Move("ask", ask(data, entry.items[pos - 1].id))


async def do_cancel(wf, entry, conv, cb) -> Move:
    return Move(None, {}, final_text=t("e.cancelled"),
                final_buttons=[[(t("e.b_resume"), callbacks.encode("ent", entry.run.id))]])


async def do_ok(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    item = current_item(entry, data)
    pending = data.get("pending")
    if not pending or pending.get("readings"):
        raise StaleAction()
    return await save_pending(wf, entry, data, item, pending)


async def save_pending(wf, entry, data: dict, item: ItemView, pending: dict) -> Move:
    """Record a confirmed value; the saved card waits for evidence."""
    waiting = len(entry_rules.pending_evidence(data, item.id))
    sub = await record(wf, entry, item, pending, data=data)
    head = t("e.evidence_attached", count=waiting) if waiting else ""
    result, why = await entry_rules.analysis_of(wf, entry.cycle, entry.ind(item), item, sub)
    extra = {}
    if why:  # the analysis questions come after the value is saved
        extra["why"] = why
        if result is not None and result.percent is not None:
            extra["cap"] = format_percent(result.percent)
    return Move("evidence", ask(data, item.id, reading=pending.get("reading", ""),
                                review=data.get("review", False), **extra), head=head)


async def do_pick(wf, entry, conv, cb) -> Move:
    """"epick:<run>:<n>": the person chose reading n of an ambiguous number."""
    data = dict(conv.data)
    item = current_item(entry, data)
    pending = data.get("pending") or {}
    choices = pending.get("readings") or []
    if cb.arg(1) >= len(choices):
        raise StaleAction()
    chosen = dict(pending, value=choices[cb.arg(1)], readings=[])
    return await save_pending(wf, entry, data, item, chosen)


async def do_retry(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    item = current_item(entry, data)
    return Move("ask", ask(data, item.id, review=data.get("review", False)))


async def do_summary(wf, entry, conv, cb) -> Move:
    return Move("summary", ask(conv.data))


async def do_next(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    item = current_item(entry, data)
    if conv.state == "ask":  # "Tetap": keep the saved answer
        sub = await wf.latest_submission(entry.cycle.id, item.indicator_id)
        if sub is None:
            raise StaleAction()
        if item.id in entry.returned:  # a returned answer kept: its analysis asked again
            ask_again = await entry_rules.analysis_for(wf, entry.cycle, entry.ind(item),
                                                       item, sub)
        else:
            ask_again = await entry_rules.missing_analysis(wf, entry.cycle, entry.ind(item),
                                                           item, sub)
        if ask_again:  # kept, but its analysis is (still) to be written
            return Move("evidence", ask(data, item.id, review=data.get("review", False),
                                        why=ask_again))
    elif any(entry_rules.analysis_required(wf, f) for f in data.get("why") or []):
        if conv.state == "note":  # no note: back to the question that must be answered
            return Move("evidence", data)
        raise InvalidInput(t("e.why_required"))
    state, data = advance(entry, data, item)
    return Move(state, data)


async def do_why_skip(wf, entry, conv, cb) -> Move:
    """"ewhy:<run>": the open analysis question is left unanswered."""
    data = dict(conv.data)
    why = list(data.get("why") or [])
    if not why:
        raise StaleAction()
    if entry_rules.analysis_required(wf, why[0]):
        raise InvalidInput(t("e.why_required"))
    data["why"] = why[1:]
    if not data["why"]:
        data.pop("why")
        data.pop("cap", None)
    return Move("evidence", data)


async def do_note(wf, entry, conv, cb) -> Move:
    data = dict(conv.data)
    return Move("note", data)


async def do_goto(wf, entry, conv, cb) -> Move:
    item = entry.item(cb.arg(1))
    if item is None:
        raise StaleAction()
    return Move("ask", ask(conv.data, item.id, review=True))


async def do_send(wf, entry, conv, cb) -> Move:
    if not entry.is_kabid:
        raise NotAllowed()
    await wf.submit_unit(entry.person, entry.run.id)
    return Move(None, {}, final_text=t("e.submitted", unit=entry.unit.name,
                                       count=len(entry.items)))


async def do_done(wf, entry, conv, cb) -> Move:
    """A staf finished the indicators handed to them: the Kabid is told (the core's)."""
    await staff_done(wf, entry, [[(t("e.b_resume"), callbacks.encode("ent", entry.run.id))]])
    return Move(None, {}, final_text=t("e.staff_done", count=len(entry.items)))


def _kabid_only(entry: Entry) -> None:
    if not entry.is_kabid:
        raise NotAllowed()


async def do_hand(wf, entry, conv, cb) -> Move:
    _kabid_only(entry)
    return Move("assign", ask(conv.data))


async def do_assign(wf, entry, conv, cb) -> Move:
    _kabid_only(entry)
    item = entry.item(cb.arg(1))
    if item is None:
        raise StaleAction()
    return Move("assign", ask(conv.data, pick=item.id, page=conv.data.get("page", 0)))


async def do_assign_to(wf, entry, conv, cb) -> Move:
    _kabid_only(entry)
    item = entry.item(cb.arg(1))
    if item is None or (conv.data or {}).get("pick") != item.id:
        raise StaleAction()
    staff_id = cb.arg(2) or None
    await wf.assign_item(entry.person, entry.run.id, item.id, staff_id)
    item = entry.assigned(item.id, staff_id)
    name = entry.ind(item).name
    if staff_id:
        staff = await wf.s.get(Person, staff_id)
        head = t("e.assign_done", name=name, who=staff.name)
        # the card moves on to the next indicator that is still the Kabid's
        data = {k: v for k, v in conv.data.items() if k != "pick"}
        start = entry.item(data.get("item")) or item
        nxt = own_unanswered(entry, await answered_ids(wf, entry), start)
        if nxt is None:
            return Move("summary", ask(data), head=head)
        return Move("ask", ask(data, nxt.id), head=head)
    head = t("e.assign_back", name=name)
    return Move("assign", ask(conv.data, page=conv.data.get("page", 0)), head=head)


async def do_page(wf, entry, conv, cb) -> Move:
    """"epage:<run>:<page>": another page of the summary or of the handover list."""
    if conv.state == "assign" and (conv.data or {}).get("pick"):
        raise StaleAction()
    return Move(conv.state, dict(conv.data, page=cb.arg(1)))


@dataclass(frozen=True)
class ButtonSpec:
    fn: object
    states: tuple[str, ...] = ()


BUTTONS: dict[str, ButtonSpec] = {
    "eskip": ButtonSpec(do_skip, ("ask",)),
    "eback": ButtonSpec(do_back, ("ask", "evidence", "note")),
    "ecanc": ButtonSpec(do_cancel),
    "eok": ButtonSpec(do_ok, ("confirm",)),
    "epick": ButtonSpec(do_pick, ("confirm",)),
    "eno": ButtonSpec(do_retry, ("confirm", "evidence", "note")),
    "esum": ButtonSpec(do_summary, ("ask", "evidence", "note", "assign", "summary")),
    "enext": ButtonSpec(do_next, ("ask", "evidence", "note")),
    "enote": ButtonSpec(do_note, ("evidence",)),
    "ewhy": ButtonSpec(do_why_skip, ("evidence",)),
    "egoto": ButtonSpec(do_goto, ("summary",)),
    "esend": ButtonSpec(do_send, ("summary",)),
    "edone": ButtonSpec(do_done, ("summary",)),
    "ehand": ButtonSpec(do_hand, ("ask", "summary", "assign")),
    "eassign": ButtonSpec(do_assign, ("assign",)),
    "eto": ButtonSpec(do_assign_to, ("assign",)),
    "epage": ButtonSpec(do_page, ("summary", "assign")),
}


@action(Role.KABID, Role.STAF, callback=True)
async def on_button(update: Update, context: Context, person: Person, cb) -> str | None:
    spec = BUTTONS[cb.action]
    async with transaction(context) as (session, wf):
        entry = await load_entry(wf, person, cb.arg(0))
        conv = await entry_conversation(session, entry, update, spec.states)
        message_id = conv.message_id
        move = await spec.fn(wf, entry, conv, cb)
        if move.state is None:
            await clear_conversation(session, person.id)
            text, buttons = move.final_text, move.final_buttons
        else:
            await set_conversation(session, person.id, ENTRY, move.state, move.data)
            text, buttons = await render(wf, entry, move.state, move.data, move.head)
    await put_card(update, context, person.id, message_id, text, buttons)
    return move.answer


# ----------------------------------------------------------------- start / resume
async def answered_ids(wf: Workflow, entry: Entry) -> set[int]:
    """The indicators (ids) that have an answer or a skip."""
    latest = await wf.latest_submissions(entry.cycle.id, [i.indicator_id for i in entry.items])
    return {i for i, sub in latest.items() if sub is not None}


def own_unanswered(entry: Entry, answered: set[int], start: ItemView | None = None
                   ) -> ItemView | None:
    """The first unanswered indicator from ``start`` on (then from the first) that the
    person still fills in themselves: for the Kabid, not handed to a staf."""
    def own(i: ItemView) -> bool:
        return i.indicator_id not in answered and not (entry.is_kabid and i.assigned_to_id)
    pos = entry.position(start) if start is not None else 0
    return next((i for i in entry.items[pos:] + entry.items[:pos] if own(i)), None)


def first_position(entry: Entry, answered: set[int]) -> ItemView | None:
    """Where a fresh start begins: the first unanswered indicator not handed to a staf
    (a returned bidang starts at the first, its earlier answers shown as defaults)."""
    if entry.returned:  # single answers sent back: the first one that is the person's own
        return own_unanswered(entry, set())
    if entry.run.round > 1:
        return entry.items[0]
    return own_unanswered(entry, answered)


@action(Role.KABID, Role.STAF, callback=True)
async def enter(update: Update, context: Context, person: Person, cb) -> str | None:
    """"ent:<run>": start or resume the entry; the card is sent anew at the bottom."""
    async with transaction(context) as (session, wf):
        entry = await load_entry(wf, person, cb.arg(0))
        if not entry.items:
            if entry.is_kabid:
                raise InvalidInput(t("e.no_items"))
            raise NotAssignee(t("e.not_yours"))
        conv = await get_conversation(session, person.id)
        old_message = conv.message_id if conv is not None and conv.kind == ENTRY else None
        if conv is not None and conv.kind == ENTRY and conv.data.get("run") == entry.run.id:
            state, data = conv.state, dict(conv.data)
            if state == "confirm" and not data.get("pending"):
                state = "ask"
            if entry.item(data.get("item")) is None:
                state, data = "ask", {"run": entry.run.id, "item": entry.items[0].id}
        else:
            first = first_position(entry, await answered_ids(wf, entry))
            if first is None:
                state, data = "summary", {"run": entry.run.id, "item": entry.items[0].id}
            else:
                state, data = "ask", {"run": entry.run.id, "item": first.id}
        await set_conversation(session, person.id, ENTRY, state, data)
        text, buttons = await render(wf, entry, state, data)
    await put_card(update, context, person.id, old_message, text, buttons, new=True)
    return None


# ----------------------------------------------------------------- typed text
async def _closed(update: Update, context: Context, person: Person) -> None:
    async with transaction(context) as (session, _wf):
        await clear_conversation(session, person.id)
    await reply(update, t("e.closed"))


@text_route(ENTRY)
async def entry_text(update: Update, context: Context, person: Person, _conv) -> None:
    text = update.effective_message.text or ""
    try:
        async with transaction(context) as (session, wf):
            conv = await get_conversation(session, person.id)
            if conv is None or conv.kind != ENTRY:
                raise StaleAction()
            entry = await load_entry(wf, person, conv.data.get("run"))
            message_id = conv.message_id
            data = dict(conv.data)
            state = conv.state
            head = ""
            left = ""
            why = data.get("why") or []
            if state == "evidence" and why and not entry_rules.is_number(text):
                # a sentence answers the open analysis question
                item = current_item(entry, data)
                answer = typed_text(text)
                label = t(f"e.why_label_{why[0]}")
                if not answer or len(answer) > MAX_WHY:
                    head = "\u274C " + t("e.why_invalid", label=label, limit=MAX_WHY)
                else:
                    await keep_value(wf, entry, item, analysis={why[0]: answer})
                    data["why"] = why[1:]
                    if not data["why"]:
                        data.pop("why")
                        data.pop("cap", None)
                    head = t("e.why_saved", label=label)
                state = "analysis"  # handled: the saved card again
            elif state == "evidence" and why and entry_rules.analysis_required(wf, why[0]):
                # a number is no hindering factor, and the question cannot be skipped
                head = "\u274C " + t("e.why_number", raw=text.strip(),
                                      label=t(f"e.why_label_{why[0]}").lower())
                state = "analysis"
            elif state == "evidence":
                # a value typed on the saved card answers the next indicator (the optional
                # analysis questions still open are left unanswered)
                item = current_item(entry, data)
                nxt_state, nxt = advance(entry, data, item)
                if nxt_state == "ask":
                    if why:
                        left = t("e.why_left", label=t(f"e.why_label_{why[0]}"),
                                 name=entry.ind(item).name)
                    state, data = "ask", nxt
                else:
                    head = t("e.evidence_hint")
            if state == "analysis":
                state = "evidence"
            elif state in ("ask", "confirm"):
                item = current_item(entry, data)
                ind = entry.ind(item)
                try:
                    pending = read_answer(ind, text)
                except Rejected as exc:
                    state, data, head = "ask", ask(data, review=data.get("review", False)), \
                        "\u274C " + exc.message
                else:
                    prev = await previous_realisation(wf, entry.cycle, ind)
                    if needs_question(ind, pending, prev[1] if prev else None, item):
                        state = "confirm"
                        data = ask(data, pending=pending, review=data.get("review", False))
                    else:
                        move = await save_pending(wf, entry, data, item, pending)
                        state, data, head = move.state, move.data, move.head
                head = "\n".join(x for x in (left, head) if x)
            elif state == "note":
                note = typed_text(text)
                item = current_item(entry, data)
                sub = await wf.latest_submission(entry.cycle.id, item.indicator_id)
                if not note or len(note) > MAX_NOTE:
                    head = "\u274C " + t("e.note_invalid", limit=MAX_NOTE)
                elif sub is None or sub.skipped:
                    state, head = "ask", ""
                else:
                    await keep_value(wf, entry, item, note=note)
                    state, head = "evidence", t("e.note_saved")
            elif state == "evidence":
                pass  # the last indicator (or a review): nothing comes next
            else:  # summary, assign: show the card again at the bottom
                pass
            # in the update's first run written with the new card's message id, in one
            # statement (``bot.telegram.intake``: no savepoint, flushed at the latest before the mark)
            await set_conversation(session, person.id, ENTRY, state, data, flush=False)
            card_text, buttons = await render(wf, entry, state, data, head)
    except StaleAction:
        await _closed(update, context, person)
        return
    await put_card(update, context, person.id, message_id, card_text, buttons, new=True)


# ----------------------------------------------------------------- evidence files
def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def type_allowed(name: str, mime: str | None) -> bool:
    spec = EVIDENCE_TYPES.get(_ext(name))
    if spec is None:
        return False
    return mime in GENERIC_MIME or mime in spec[0]


def content_ok(name: str, data: bytes) -> bool:
    """The bytes are what the name says (a renamed archive or program is refused)."""
    kind = EVIDENCE_TYPES[_ext(name)][1]
    if kind == "jpeg":
        return data.startswith(b"\xff\xd8\xff")
    if kind == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if kind == "pdf":
        return data[:1024].lstrip().startswith(b"%PDF-")
    if kind == "ole":
        return data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    if kind in ("ooxml", "odf"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return False
        return "[Content_Types].xml" in names if kind == "ooxml" else "mimetype" in names
    return False


FILE_STATES = ("ask", "confirm", "evidence", "note")


@file_route(ENTRY)
async def entry_file(update: Update, context: Context, person: Person, conv) -> None:
    msg = update.effective_message
    if conv.state not in FILE_STATES:
        await reply(update, t("e.file_not_now"))
        return
    limit = evidence_limit(context)
    if msg.document is not None:
        name = msg.document.file_name or "dokumen"
        size = msg.document.file_size or 0
        if size > limit:
            await reply(update, t("e.evidence_too_big", size=size_text(size),
                                  limit=size_text(limit)))
            return
        if not type_allowed(name, msg.document.mime_type):
            await reply(update, t("e.file_type", name=name))
            return
    elif msg.photo:
        size = msg.photo[-1].file_size or 0
        if size > limit:
            await reply(update, t("e.evidence_too_big", size=size_text(size),
                                  limit=size_text(limit)))
            return
    else:
        await reply(update, t("e.file_type", name="-"))
        return
    # who and where, before anything is downloaded
    try:
        async with transaction(context) as (session, wf):
            entry = await load_entry(wf, person, conv.data.get("run"))
    except StaleAction:
        await _closed(update, context, person)
        return
    try:
        got = await download(update, context, limit)
    except FileTooBig as exc:
        await reply(update, exc.message)
        return
    data, name, mime = got
    if msg.document is not None and not content_ok(name, data):
        await reply(update, t("e.file_type", name=name))
        return
    sv = services(context)
    try:
        async with transaction(context) as (session, wf):
            current = await get_conversation(session, person.id)
            if (current is None or current.kind != ENTRY
                    or current.data.get("run") != conv.data.get("run")
                    or current.state not in FILE_STATES):
                raise StaleAction()
            entry = await load_entry(wf, person, current.data.get("run"))
            cdata = dict(current.data)
            message_id = current.message_id
            item = current_item(entry, cdata)
            state = current.state
            sub = await wf.latest_submission(entry.cycle.id, item.indicator_id)
            early = sub is None or sub.skipped
            if early and state not in ("ask", "confirm"):
                raise InvalidInput(t("e.file_first"))
            # over the person's quota for this cycle: refused before anything is written
            await check_quota(session, sv.config, person.id, entry.cycle.id, len(data))
            stored = await sv.store.put(session, data, name, mime, limit=True)
            if early:  # evidence first: kept until the value comes
                if entry_rules.add_pending_evidence(cdata, item.id, stored.id):
                    head = t("e.evidence_early", name=name)
                else:
                    head = t("e.evidence_dup")
            elif stored.id in await evidence_ids(session, sub):
                head = t("e.evidence_dup")
            else:
                await wf.add_evidence(person, entry.run.id, sub.id, stored.id)
                head = t("e.evidence_saved", name=name)
            if state == "note":
                state = "evidence"
            await set_conversation(session, person.id, ENTRY, state, cdata)
            card_text, buttons = await render(wf, entry, state, cdata, head)
    except FileTooLarge as exc:
        await reply(update, t("e.evidence_too_big", size=size_text(exc.size),
                              limit=size_text(exc.limit)))
        return
    except StaleAction:
        await _closed(update, context, person)
        return
    await put_card(update, context, person.id, message_id, card_text, buttons, new=True)


def register(app) -> None:
    app.add_handler(CallbackQueryHandler(enter, pattern=callbacks.pattern("ent")))
    app.add_handler(CallbackQueryHandler(on_button, pattern=callbacks.pattern(*BUTTONS)))

"""The one renderer for messages built from data: it escapes, measures and pages them.

Every text sent to Telegram is HTML (``parse_mode=HTML``). Data (names of people, units
and indicators, notes, reasons, values) enters a message only escaped: through ``t()``
(which escapes every keyword argument) or :func:`esc`. Telegram then limits what a
person reads, i.e. the text *after* entity parsing: 4,096 characters for a message, 1,024
for a caption, 64 bytes of callback data. :func:`visible_length` counts like Telegram
(tags removed, ``&lt;`` counted once, in UTF-16 code units, so an emoji counts two,
which is never less than what Telegram counts), and:

* :func:`page` cuts a list into pages of at most ``PAGE_ITEMS`` lines that fit
  ``TEXT_BUDGET``, with "‹ Sebelumnya" / "Berikutnya ›" buttons carrying the page
  number in their callback data (cards a person pages through);
* :func:`split` cuts a long text into several messages at line ends (notifications,
  where paging makes no sense; ``bot.core.outbox.enqueue`` does it for every queued text);
* :func:`label` makes a button label: plain text (buttons are not HTML), one line,
  shortened to ``LABEL_LIMIT`` characters.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
TEXT_BUDGET = 3900     # a page leaves room for the page line and small additions
LABEL_LIMIT = 64       # a button label a phone shows without cutting too much
PAGE_ITEMS = 10        # list items per page
MAX_BUTTONS = 100      # Telegram's limit per keyboard
ELLIPSIS = "\u2026"

_TAG = re.compile(r"<[^<>]*>")

Button = tuple[str, str]


def esc(value: object) -> str:
    """Data as HTML text (``<``, ``>``, ``&`` escaped; quotes are fine in text)."""
    return html.escape(str(value), quote=False)


def plain(text: str) -> str:
    """What a person reads of an HTML text: tags removed, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible_length(text: str) -> int:
    """The length Telegram checks: after entity parsing, surrounding space stripped,
    in UTF-16 code units."""
    return utf16_len(plain(text).strip())


def fits(text: str, limit: int = TEXT_LIMIT) -> bool:
    return 0 < visible_length(text) <= limit


def clip(text: str, limit: int) -> str:
    """Plain text shortened to ``limit`` UTF-16 units with an ellipsis, cut at a word
    boundary ("Bidang Pelatihan dan…", never "Bidang Pelatihan dan Penem…"); only a
    single word longer than the whole limit is cut inside itself."""
    if utf16_len(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        n = utf16_len(ch)
        if used + n > limit - 1:
            break
        out.append(ch)
        used += n
    kept = "".join(out)
    if not text[len(kept)].isspace():  # the cut falls inside a word: drop that word
        words = kept.rsplit(None, 1)
        if len(words) == 2:
            kept = words[0]
    return kept.rstrip(" \t\n,;:-–/") + ELLIPSIS


def label(text: str, limit: int = LABEL_LIMIT) -> str:
    """A button label from plain text (buttons are not HTML): one line, shortened."""
    return clip(" ".join(str(text).split()), limit) or "-"


def button_text(key: str, limit: int = LABEL_LIMIT, **kwargs: object) -> str:
    """A button label from the catalogue: ``t()`` escapes the data for HTML, a label
    is plain text, so the escaping is undone (a "&" shows as "&", not "&amp;")."""
    from bot.texts import t

    return label(html.unescape(t(key, **kwargs)), limit)


def _balanced(line: str) -> bool:
    """True when every tag opened in ``line`` is closed in it (our templates never
    span a tag over several lines, but a cut must never split one)."""
    depth = 0
    for m in re.finditer(r"<(/?)[a-zA-Z][^<>]*>", line):
        depth += -1 if m.group(1) else 1
        if depth < 0:
            return False
    return depth == 0


def clip_html(line: str, limit: int) -> str:
    """An HTML line that fits ``limit``: unchanged when it fits, else its plain text
    shortened and escaped again (formatting of that one line is dropped)."""
    if visible_length(line) <= limit and _balanced(line):
        return line
    return esc(clip(plain(line), limit))


def split(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into messages that each fit ``limit``, at line ends, never inside
    a tag or an entity; an over-long single line is shortened."""
    if fits(text, limit):
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for raw in text.split("\n"):
        line = clip_html(raw, limit)
        n = utf16_len(plain(line)) + (1 if current else 0)
        if current and size + n > limit:
            parts.append("\n".join(current))
            current, size = [], 0
            n -= 1
        current.append(line)
        size += n
    if current:
        parts.append("\n".join(current))
    return [p for p in parts if plain(p).strip()] or [esc(ELLIPSIS)]


@dataclass(frozen=True)
class Page:
    text: str
    number: int        # 0-based, clamped to the pages there are
    count: int         # how many pages
    items: range       # which items (indices into the list) are on this page

    @property
    def paged(self) -> bool:
        return self.count > 1


def pages_of(items: Sequence[str], fixed: int, *, per_page: int = PAGE_ITEMS,
             budget: int = TEXT_BUDGET) -> list[range]:
    """Group item lines greedily: at most ``per_page`` items and ``budget`` visible
    units per page, ``fixed`` units already taken by the head and foot."""
    groups: list[range] = []
    start, size = 0, fixed
    for i, item in enumerate(items):
        n = utf16_len(plain(item)) + 1
        if i > start and (i - start >= per_page or size + n > budget):
            groups.append(range(start, i))
            start, size = i, fixed
        size += n
    groups.append(range(start, len(items)))
    return groups


def page(head: Sequence[str] | str, items: Sequence[str], foot: Sequence[str] | str = (),
         number: int = 0, *, per_page: int = PAGE_ITEMS, budget: int = TEXT_BUDGET) -> Page:
    """One page of a listing: the head, the page's items, the page line, the foot."""
    from bot.texts import t

    head_lines = [head] if isinstance(head, str) else list(head)
    foot_lines = [foot] if isinstance(foot, str) else list(foot)
    room = max(200, budget // 4)  # head and foot never take more than a quarter
    head_lines = [clip_html(h, room) for h in head_lines]
    foot_lines = [clip_html(f, room) for f in foot_lines]
    item_room = budget - 2 * room
    lines = [clip_html(i, item_room) for i in items]
    fixed = sum(utf16_len(plain(x)) + 1 for x in head_lines + foot_lines) + 40
    groups = pages_of(lines, fixed, per_page=per_page, budget=budget)
    number = max(0, min(number, len(groups) - 1))
    chosen = groups[number]
    body = head_lines + [lines[i] for i in chosen]
    if len(groups) > 1:
        body.append(t("p.page", page=number + 1, pages=len(groups)))
    body += foot_lines
    return Page("\n".join(body), number, len(groups), chosen)


def pager(action: str, args: Sequence[int], pg: Page) -> list[Button]:
    """The "‹ Sebelumnya" / "Berikutnya ›" row (empty for a single page); the page
    number is the last callback argument."""
    from bot import callbacks
    from bot.texts import t

    row: list[Button] = []
    if pg.number > 0:
        row.append((t("p.prev"), callbacks.encode(action, *args, pg.number - 1)))
    if pg.number + 1 < pg.count:
        row.append((t("p.next"), callbacks.encode(action, *args, pg.number + 1)))
    return row


def keyboard_ok(buttons: Sequence[Sequence[Button]] | None) -> bool:
    """A keyboard Telegram accepts: at most 100 buttons, callback data of 1-64 bytes."""
    if not buttons:
        return True
    flat = [b for row in buttons for b in row]
    return len(flat) <= MAX_BUTTONS and all(
        0 < len(data.encode()) <= CALLBACK_LIMIT and label_ok(text) for text, data in flat)


def label_ok(text: str) -> bool:
    """A plain one-line label of at most ``LABEL_LIMIT`` characters, no HTML entity."""
    return (0 < len(text) <= LABEL_LIMIT and "\n" not in text
            and not re.search(r"&(lt|gt|amp|quot);", text))


def labels(buttons: Sequence[Sequence[Button]] | None) -> list[list[Button]] | None:
    """A keyboard with every label made a plain one-line label that fits."""
    if not buttons:
        return None
    return [[(label(text), data) for text, data in row] for row in buttons]

"""The one renderer (bot/render.py): data is escaped, texts are measured as Telegram
measures them, long texts are split at line ends and lists are paged, and the outbox
never queues a message Telegram would refuse."""
from __future__ import annotations

from sqlalchemy import select

from bot import render
from bot.devtools.emulator import parse_html
from bot.core.outbox import enqueue, make_payload
from bot.texts import t
from models import Outbox, Person
from models.enums import Role

HOSTILE = 'Bidang <Hubungan> Industrial & "Jamsos" \'Norma\' No. 3. 🏭'


def test_visible_length_counts_what_telegram_counts():
    text = t("e.saved", name=HOSTILE, value="1.234.567.890.123")
    plain, _ = parse_html(text)
    assert render.plain(text) == plain
    # "&lt;" counts once, tags not at all, the emoji twice (UTF-16)
    assert render.visible_length(text) == len(plain) + 1


def test_split_cuts_at_line_ends_and_never_inside_an_entity():
    lines = [t("n.data_request_item", no=i, name=HOSTILE * 2, unit="Rp <juta> & \"x\"",
               target="1.250.000.000.000") for i in range(1, 80)]
    text = "<b>Permintaan data</b>\n" + "\n".join(lines)
    parts = render.split(text)
    assert len(parts) > 1
    rebuilt = []
    for part in parts:
        plain, _ = parse_html(part)  # every part parses (no cut "&lt;" or "<b>")
        assert render.utf16_len(plain) <= render.TEXT_LIMIT
        rebuilt.append(plain)
    assert "\n".join(rebuilt) == parse_html(text)[0]  # nothing lost, in order


def test_an_overlong_single_line_is_shortened_and_still_parses():
    line = "<b>" + render.esc(HOSTILE * 200) + "</b>"
    (part,) = render.split(line)
    plain, _ = parse_html(part)
    assert render.utf16_len(plain) <= render.TEXT_LIMIT and plain.endswith("\u2026")


def test_button_labels_are_plain_one_line_and_short():
    label = render.button_text("c.b_view", unit=HOSTILE * 3)
    assert label.startswith('Lihat data Bidang <Hubungan> Industrial & "Jamsos"')
    assert len(label) <= render.LABEL_LIMIT and label.endswith("\u2026")
    assert render.label("a\nb  c") == "a b c"


def test_page_keeps_pages_small_and_the_pager_carries_the_page_number():
    items = [t("e.summary_line", no=i, name=HOSTILE, value="88,5", evidence="", assigned="")
             for i in range(1, 41)]
    first = render.page("<b>Ringkasan</b>", items, "foot", 0)
    assert first.count == 4 and list(first.items) == list(range(10))
    assert render.pager("epage", (7,), first) == [("Berikutnya \u203a", "epage:7:1")]
    last = render.page("<b>Ringkasan</b>", items, "foot", 99)  # clamped
    assert last.number == 3 and list(last.items) == list(range(30, 40))
    assert render.pager("epage", (7,), last) == [("\u2039 Sebelumnya", "epage:7:2")]
    assert "Halaman 4 dari 4" in parse_html(last.text)[0]


def test_make_payload_never_exceeds_the_limits():
    payload = make_payload("x\n" * 5000, [[(HOSTILE * 3, "ent:1")]])
    assert render.visible_length(payload["text"]) <= render.TEXT_LIMIT
    assert len(payload["buttons"][0][0][0]) <= render.LABEL_LIMIT


async def test_a_long_notification_is_queued_as_several_rows_in_order_buttons_last(
        sessionmaker, clock, office):
    lines = [t("n.data_request_item", no=i, name=HOSTILE * 2, unit="%", target="85")
             for i in range(1, 61)]
    text = "<b>Permintaan data</b>\n" + "\n".join(lines)
    async with sessionmaker() as s, s.begin():
        kabid = (await s.execute(select(Person).where(Person.role == Role.KABID))).scalars().first()
        last = await enqueue(s, kabid, "data_request", text, [[("Mulai isi data", "ent:1")]],
                             at=clock.now(), files=[{"file_id": 1, "kind": "document"}])
    async with sessionmaker() as s:
        rows = list((await s.execute(select(Outbox).order_by(Outbox.id))).scalars())
    assert len(rows) >= 2 and rows[-1].id == last.id
    assert [bool(r.payload.get("buttons")) for r in rows] == [False] * (len(rows) - 1) + [True]
    assert [bool(r.payload.get("files")) for r in rows] == [True] + [False] * (len(rows) - 1)
    plains = [parse_html(r.payload["text"])[0] for r in rows]
    assert all(render.utf16_len(p) <= render.TEXT_LIMIT for p in plains)
    assert "\n".join(plains) == parse_html(text)[0]

"""The short Indonesian summary sent as the Telegram message with the documents.

HTML parse mode (``<b>``, ``<i>`` only); every piece of data is escaped. The text stays
under Telegram's caption limit (1,024 characters) so it can be used as the caption of
the PDF as well as a message of its own.
"""
from __future__ import annotations

from html import escape

from reports.document_data import DocumentData, iter_lowest
from reports.measure import summarise
from reports.numbers import format_percent, round_half_up

__all__ = ["CAPTION_LIMIT", "summary_text"]

CAPTION_LIMIT = 1024
_LOWEST = 3


def _short(text: str, limit: int) -> str:
    """One line, shortened at a word boundary (the bot's one shortening rule)."""
    from bot.render import clip

    return clip(" ".join(text.split()), limit)


def summary_text(data: DocumentData, *, name_limit: int = 70) -> str:
    """E.g. ``<b>Pengukuran Kinerja</b> – Triwulan III Tahun 2024`` then the counts,
    the average and the three lowest capaian with their names."""
    measured = data.measured()
    s = summarise([result for _, result in measured])
    lines = []
    if data.example_data:
        lines.append("⚠️ <b>DATA CONTOH</b> – bukan data resmi")
    title, period = _short(data.title, 80), _short(data.period_label, 80)
    lines.append(f"<b>{escape(title)}</b> – {escape(period)}")
    lines.append(escape(_short(data.office_line, 150)))
    if data.letter_number:
        lines.append(f"Nomor: {escape(_short(data.letter_number, 80))}")
    lines.append("")
    lines.append(f"Jumlah indikator: <b>{s.total}</b>")
    lines.append(f"Mencapai target: <b>{s.reached}</b>")
    lines.append(f"Belum mencapai target: <b>{s.not_reached}</b>")
    lines.append(f"Belum ada data: <b>{s.no_data}</b>")
    if s.no_target:
        lines.append(f"Belum ada target: <b>{s.no_target}</b>")
    if s.average_score is not None:
        average = format_percent(round_half_up(s.average_score, 2))
        lines.append(f"Rata-rata capaian: <b>{average}</b> ({s.scored} indikator)")
    else:
        lines.append("Rata-rata capaian: belum dapat dihitung")
    lowest = list(iter_lowest(measured, _LOWEST))
    head = "\n".join(lines)
    while True:
        tail = []
        if lowest:
            tail.append("")
            tail.append("<i>Capaian terendah:</i>")
            for number, (row, result) in enumerate(lowest, start=1):
                value = format_percent(round_half_up(result.score, 2))
                tail.append(f"{number}. {escape(_short(row.name, name_limit))}: <b>{value}</b>")
        text = head + ("\n" + "\n".join(tail) if tail else "")
        if len(text) <= CAPTION_LIMIT or name_limit <= 20:
            return text  # the head alone is at most ~650 characters
        name_limit -= 10

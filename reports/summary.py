"""The short Indonesian summary sent as the Telegram message with the documents.

HTML parse mode (``<b>``, ``<i>`` only); every piece of data is escaped. The text stays
under Telegram's caption limit (1,024 characters) so it can be used as the caption of
the PDF as well as a message of its own.
"""
from __future__ import annotations

from html import escape
from typing import Sequence

from reports.document_data import DocumentData, iter_lowest
from reports.measure import summarise
from reports.numbers import format_percent, round_half_up

__all__ = ["CAPTION_LIMIT", "TEXT_LIMIT", "Change", "sign_summary", "summary_text"]

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
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


Change = tuple[str, str, str]  # indicator name, value in the returned version, value now
_NOT_REACHED_SHOWN = 10
_CHANGES_SHOWN = 10


def sign_summary(data: DocumentData, *, returned_version: int | None = None,
                 changes: Sequence[Change] = ()) -> str:
    """What the Kadis needs on his phone to sign: capaian per bidang, the indicators
    not achieved, and what changed since the version he returned (``returned_version``
    with ``changes``). At most 4,096 characters (a message of its own when longer than a
    caption); long lists end with "dan N lainnya"."""
    measured = data.measured()
    s = summarise([result for _, result in measured])
    lines = []
    if data.example_data:
        lines.append("⚠️ <b>DATA CONTOH</b> – bukan data resmi")
    lines.append(f"<b>{escape(_short(data.title, 80))}</b> – "
                 f"{escape(_short(data.period_label, 80))} (versi {data.version})")
    lines.append(f"Tercapai {s.reached} dari {s.total} indikator")
    lines.append("")
    lines.append("<i>Capaian per bidang:</i>")
    by_bidang: dict[str, list] = {}
    for row, result in measured:
        by_bidang.setdefault(row.bidang, []).append(result)
    for bidang, results in by_bidang.items():
        scores = [r.score for r in results if r.score is not None]
        reached = sum(1 for r in results if r.reached)
        average = (format_percent(round_half_up(sum(scores) / len(scores), 2))
                   if scores else "-")
        lines.append(f"• {escape(_short(bidang, 50))}: <b>{average}</b> "
                     f"({reached}/{len(results)} tercapai)")
    missed = [(row, r) for row, r in measured if r.reached is False]
    # the lowest first (those without a percentage last), ties in document order
    missed.sort(key=lambda item: (item[1].score is None, item[1].score or 0))
    if missed:
        lines.append("")
        lines.append(f"<i>Belum mencapai target ({len(missed)}):</i>")
        for row, r in missed[:_NOT_REACHED_SHOWN]:
            value = format_percent(round_half_up(r.score, 2)) if r.score is not None else "-"
            lines.append(f"• {escape(_short(row.name, 60))}: {value}")
        if len(missed) > _NOT_REACHED_SHOWN:
            lines.append(f"  dan {len(missed) - _NOT_REACHED_SHOWN} lainnya")
    if returned_version is not None:
        lines.append("")
        lines.append(f"<i>Perubahan sejak versi {returned_version} yang Anda kembalikan:</i>")
        for name, old, new in list(changes)[:_CHANGES_SHOWN]:
            lines.append(f"• {escape(_short(name, 60))}: {escape(_short(old, 40))} → "
                         f"<b>{escape(_short(new, 40))}</b>")
        if len(changes) > _CHANGES_SHOWN:
            lines.append(f"  dan {len(changes) - _CHANGES_SHOWN} lainnya")
        if not changes:
            lines.append("• tidak ada angka yang berubah (dokumen disusun ulang)")
    text = "\n".join(lines)
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT - 2].rsplit("\n", 1)[0] + "\n…"
    return text

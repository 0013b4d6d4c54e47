"""The capaian chart (PNG, matplotlib) that goes with the documents in Telegram.

Made for a phone: 1080 px wide, horizontal bars (long Indonesian indicator names read
left to right instead of slanting under the axis), two panels:

1. average capaian per bidang (the mean score of its indicators that have one),
2. capaian per indicator, coloured by bidang, in document order grouped by bidang.
   A document with more than :data:`MAX_INDICATOR_BARS` indicators shows the lowest
   ones instead (the ones that need attention), and says so in the panel title.

A dashed red line marks 100 %. Values are written on the bars with a decimal comma
("95,1%"). Indicators without a percentage (text indicators, no data, target 0) are
listed under the bars with their status ("Belum ada data", "Tercapai"), never drawn as 0.
The figure height grows with the number of bars; rendering is headless (Agg).
"""
from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from reports.document_data import DocumentData, IndicatorRow, capaian_label  # noqa: E402
from reports.measure import Capaian, summarise  # noqa: E402
from reports.numbers import format_number, round_half_up  # noqa: E402

__all__ = ["MAX_INDICATOR_BARS", "build_chart"]

MAX_INDICATOR_BARS = 30
MAX_NO_PERCENT_LINES = 8
_DPI = 150
_WIDTH_IN = 1080 / _DPI  # 7.2 in
_BAR_IN = 0.34
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f", "#d62728")
_REFERENCE = "#c00000"


def _pct(value: Decimal | float, places: int = 1) -> str:
    return format_number(round_half_up(Decimal(str(value)), places), places) + "%"


def _label(text: str, width: int = 34, lines: int = 2) -> str:
    wrapped = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "…"
    return "\n".join(wrapped)


def _bars(ax, labels: list[str], values: list[float], colors: list[str], title: str,
          xmax: float) -> None:
    positions = list(range(len(values)))
    ax.barh(positions, values, color=colors, height=0.65, zorder=2)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_ylim(len(values) - 0.5, -0.5)  # first bar on top, no empty margins
    ax.axvline(100, color=_REFERENCE, linestyle="--", linewidth=1.2, zorder=3)
    ax.set_xlim(min(0.0, min(values, default=0.0) * 1.1), xmax)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_number(int(v)) + "%"))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, zorder=0)
    ax.set_title(title, fontsize=10.5, fontweight="bold", loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for pos, value in zip(positions, values):
        inside = value > xmax * 0.82
        ax.text(value - xmax * 0.01 if inside else max(value, 0) + xmax * 0.01, pos,
                _pct(value), va="center", ha="right" if inside else "left", fontsize=7.5,
                color="white" if inside else "#222222", zorder=4,
                bbox=None if inside else {"boxstyle": "square,pad=0.1", "fc": "white",
                                          "ec": "none", "alpha": 0.85})


def build_chart(data: DocumentData, path: Path) -> Path:
    """Render the capaian chart of ``data`` as a PNG at ``path``; return the path."""
    measured = data.measured()
    groups = data.bidang_groups()
    color_of = {bidang: _PALETTE[i % len(_PALETTE)] for i, (bidang, _) in enumerate(groups)}

    # panel 1: average per bidang
    bidang_labels, bidang_values, bidang_colors = [], [], []
    by_bidang: dict[str, list[Capaian]] = {}
    for row, result in measured:
        by_bidang.setdefault(row.bidang, []).append(result)
    no_average: list[str] = []
    for bidang, _ in groups:
        summary = summarise(by_bidang.get(bidang, []))
        if summary.average_score is None:
            no_average.append(bidang)
            continue
        bidang_labels.append(_label(bidang, 34))
        bidang_values.append(float(summary.average_score))
        bidang_colors.append(color_of[bidang])

    # panel 2: per indicator
    with_score = [(row, r) for row, r in measured if r.score is not None]
    without = [(row, r) for row, r in measured if r.score is None]
    if len(with_score) > MAX_INDICATOR_BARS:
        lowest = sorted(range(len(with_score)), key=lambda i: (with_score[i][1].score, i))
        chosen = [with_score[i] for i in lowest[:MAX_INDICATOR_BARS]]
        panel2_title = (f"{MAX_INDICATOR_BARS} capaian terendah dari {len(measured)} "
                        "indikator")
    else:
        chosen = with_score  # document order, which is grouped by bidang
        order = {b: i for i, (b, _) in enumerate(groups)}
        chosen = sorted(chosen, key=lambda item: order[item[0].bidang])
        panel2_title = "Capaian per indikator"
    ind_labels = [_label(row.name, 38) for row, _ in chosen]
    ind_values = [float(r.score) for _, r in chosen]
    ind_colors = [color_of[row.bidang] for row, _ in chosen]

    notes = _no_percent_notes(without, no_average)
    all_values = bidang_values + ind_values
    xmax = max(125.0, max(all_values, default=0.0) * 1.12)

    h1 = 0.9 + _BAR_IN * 1.25 * max(len(bidang_values), 1)
    h2 = 0.9 + _BAR_IN * 1.25 * max(len(ind_values), 1)
    h_notes = 0.22 * len(notes) + (0.3 if notes else 0)
    height = 1.0 + h1 + h2 + h_notes
    # a Figure of its own, not pyplot's: pyplot keeps every open figure in one global
    # registry, which is not safe when two threads build charts (a build in a thread
    # worker beside another); this figure is only this call's
    fig = Figure(figsize=(_WIDTH_IN, height), dpi=_DPI)
    try:
        fig.suptitle(f"Capaian Kinerja - {data.period_label}", fontsize=13, fontweight="bold",
                     x=0.02, ha="left", y=1 - 0.25 / height)
        fig.text(0.02, 1 - 0.52 / height, _label(data.office_line, 80, 1), fontsize=8.5,
                 color="#444444")
        if data.example_data:
            fig.text(0.98, 1 - 0.52 / height, "DATA CONTOH", fontsize=10, color=_REFERENCE,
                     fontweight="bold", ha="right")
        top = 1 - 1.0 / height
        bottom_notes = h_notes / height
        panel_total = top - bottom_notes
        split = panel_total * h1 / (h1 + h2)
        left = 0.40
        ax1 = fig.add_axes((left, top - split + 0.55 / height, 0.56, split - 0.9 / height))
        ax2 = fig.add_axes((left, bottom_notes + 0.45 / height, 0.56,
                            panel_total - split - 0.9 / height))
        if bidang_values:
            _bars(ax1, bidang_labels, bidang_values, bidang_colors,
                  "Rata-rata capaian per bidang", xmax)
        else:
            _empty(ax1, "Rata-rata capaian per bidang")
        if ind_values:
            _bars(ax2, ind_labels, ind_values, ind_colors, panel2_title, xmax)
        else:
            _empty(ax2, panel2_title)
        ax1.text(100, -0.9, " 100%", color=_REFERENCE, fontsize=7.5, va="bottom")
        y = bottom_notes - 0.05 / height
        for note in notes:
            fig.text(0.02, y, note, fontsize=8, color="#444444", va="top")
            y -= 0.22 / height
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=_DPI, format="png", metadata={"Software": None})
    finally:
        fig.clear()  # its artists go now, in this thread, not at a later collection
    return path


def _empty(ax, title: str) -> None:
    ax.set_title(title, fontsize=10.5, fontweight="bold", loc="left")
    ax.text(0.5, 0.5, "Belum ada capaian yang dapat dihitung", ha="center", va="center",
            transform=ax.transAxes, fontsize=9, color="#666666")
    ax.set_axis_off()


def _no_percent_notes(without: list[tuple[IndicatorRow, Capaian]],
                      no_average: list[str]) -> list[str]:
    """Lines listing what has no percentage, so it is shown as such and not as 0."""
    notes: list[str] = []
    if without:
        notes.append(f"Tanpa persentase ({len(without)} indikator):")
        for row, result in without[:MAX_NO_PERCENT_LINES]:
            notes.append(f"  • {_label(row.name, 60, 1)}: {capaian_label(result)}")
        if len(without) > MAX_NO_PERCENT_LINES:
            notes.append(f"  … dan {len(without) - MAX_NO_PERCENT_LINES} indikator lain")
    for bidang in no_average:
        notes.append(f"{_label(bidang, 60, 1)}: belum ada capaian berupa angka")
    return notes

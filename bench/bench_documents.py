"""Documents: workbook + PDF + chart for 100, 1,000 and 5,000 indicators.

    python bench/bench_documents.py [--sizes 100 1000 5000]

Each size is built in a fresh child process so its peak memory (max RSS) is its own.
Prints seconds per builder, the total, the peak RSS, and the cost per indicator to show
how cost grows."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(n: int):
    from models.enums import LowerFormula, Polarity, ValueType
    from reports.document_data import DocumentData, IndicatorRow, Signatory

    rows = []
    for i in range(n):
        kind = i % 10
        rows.append(IndicatorRow(
            bidang=f"Bidang {i % 8 + 1}", sasaran=f"Sasaran strategis {i % 40 + 1}",
            code=f"IK-{i + 1:05d}", name=f"Persentase capaian indikator kinerja nomor {i + 1}",
            definition="Realisasi dibagi target dikali 100%", unit="%" if kind < 6 else "orang",
            polarity=Polarity.LOWER if kind == 3 else Polarity.HIGHER,
            lower_formula=LowerFormula.MIRROR, value_type=ValueType.TEXT if kind == 9 else
            ValueType.PERCENT if kind < 6 else ValueType.NUMERIC,
            target="BB" if kind == 9 else Decimal(80 + i % 20),
            realisasi=("B" if kind == 9 else None if kind == 8 else Decimal(70 + (i * 7) % 40)),
            note="" if i % 5 else "Catatan bidang", evidence=("bukti.pdf",) if i % 3 == 0 else ()))
    return DocumentData(
        office_name="Dinas Tenaga Kerja dan Perindustrian", regency="Kabupaten Lampung Barat",
        title="PENGUKURAN KINERJA", period_label="Triwulan III Tahun 2024", year=2024,
        rows=tuple(rows), signatory=Signatory("Liwa", "Kepala Dinas", "Nama Kadis",
                                              "Pembina Utama Muda", "196601011990031001"),
        example_data=True)


def child(n: int) -> None:
    import resource

    from reports.chart import build_chart
    from reports.pdf import build_pdf
    from reports.workbook import build_workbook

    data = make_data(n)
    out = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    times = {}
    for name, fn, ext in (("workbook", build_workbook, "xlsx"), ("pdf", build_pdf, "pdf"),
                          ("chart", build_chart, "png")):
        t0 = time.perf_counter()
        fn(data, out / f"doc.{ext}")
        times[name] = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "times": times, "peak_mb": peak_mb,
                      "sizes_kb": {p.suffix: p.stat().st_size // 1024 for p in out.iterdir()}}))


def main(sizes: list[int]) -> None:
    results = []
    for n in sizes:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True,
                              text=True, check=True, cwd=ROOT)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'indicators':>10} {'workbook s':>10} {'pdf s':>8} {'chart s':>8} {'total s':>8} "
          f"{'peak MB':>8} {'ms/indicator':>13}")
    for r in results:
        t = r["times"]
        total = sum(t.values())
        print(f"{r['n']:>10} {t['workbook']:>10.2f} {t['pdf']:>8.2f} {t['chart']:>8.2f} "
              f"{total:>8.2f} {r['peak_mb']:>8.0f} {total / r['n'] * 1000:>13.2f}")
    big = results[-1]
    total = sum(big["times"].values())
    print(f"target: {big['n']} indicators under 10 s and 300 MB: "
          f"{total:.2f} s ({'MET' if total < 10 else 'NOT MET'}), "
          f"{big['peak_mb']:.0f} MB ({'MET' if big['peak_mb'] < 300 else 'NOT MET'})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--child", type=int)
    args = ap.parse_args()
    if args.child:
        child(args.child)
    else:
        main(args.sizes)

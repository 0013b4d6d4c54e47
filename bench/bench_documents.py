"""Documents: the real compile path, before and after, and the builders alone.

    python bench/bench_documents.py [--indicators 5000] [--before base|REV|DIR|none]
    python bench/bench_documents.py --builders [--sizes 100 1000 5000] [--before ...]

Default: the real compile path as the bot runs it, over the Bot API emulator: an office
whose cycle holds ``--indicators`` more indicators (bulk-inserted, with answers) is at
step 6; the Kasubag presses "Susun dokumen" and waits for the card of the new version
(data loaded from the database, files built, summary, storing, sending). Meanwhile
another person sends /bantuan again and again, each as soon as the previous one was
answered. Printed: the statements the data loading runs (``document_data``), its
seconds, press-to-card seconds, the process's peak RSS (and its growth during the
compile), and the other person's reply latency (p50, p95, max). Each code runs in a
fresh child process: this tree ("after"), and ``--before`` side by side: a folder, or a
git revision extracted with ``git archive`` into a temporary folder; default ``base``,
the commit this branch started from (``git merge-base HEAD main``).

``--builders``: workbook + PDF + chart from plain data for each size, each in a fresh
child process, for ``--before`` and this tree: seconds per builder one after the other
and their sum, the peak RSS; then the files built as the bot builds them
(``bot.core.documents.build_off_loop``: its worker processes' start-up included), its
seconds, the largest worker's peak RSS and the cost per indicator."""
from __future__ import annotations

import argparse
import json
import shutil
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
    """The three builders one after the other in this process: seconds each."""
    import resource

    from reports.chart import build_chart
    from reports.pdf import build_pdf
    from reports.workbook import build_workbook

    data = make_data(n)
    out = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    times, cpu = {}, {}
    for name, fn, ext in (("workbook", build_workbook, "xlsx"), ("pdf", build_pdf, "pdf"),
                          ("chart", build_chart, "png")):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(data, out / f"doc.{ext}")
        times[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = {p.suffix: p.stat().st_size // 1024 for p in out.iterdir()}
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"n": n, "times": times, "cpu": cpu, "peak_mb": peak_mb,
                      "sizes_kb": sizes}))


def bot_child(n: int) -> None:
    """The files built as the bot builds them (``bot.core.documents.build_off_loop``:
    worker processes started, builders imported, files built, hashed and stored):
    wall-clock seconds, and the largest worker's peak RSS."""
    import asyncio
    import resource

    from bot.core import documents
    from bot.core.storage import FileStore

    data = make_data(n)
    out = Path(tempfile.mkdtemp(prefix="bench-docs-store-"))

    async def run():
        start = getattr(documents, "start_builders", None)
        if start is not None:  # as the bot does at its start (then idle a while)
            start()
            await asyncio.sleep(5)
        workers = PeakOfWorkers().__enter__()  # from here: the build's own workers
        t0 = time.perf_counter()
        built = await documents.build_off_loop(FileStore(out), data, "doc")
        seconds = time.perf_counter() - t0
        documents.stop_workers()  # a worker left idle; then every worker reaped
        deadline = time.monotonic() + 30
        while (set(workers.new_pids) & set(_descendants())
               and time.monotonic() < deadline):
            multiprocessing.active_children()
            await asyncio.sleep(0.05)
        workers.__exit__()
        return seconds, built, workers

    import multiprocessing

    seconds, built, workers = asyncio.run(run())
    assert set(built.files) == {"workbook", "pdf", "chart"}, built.files
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({
        "n": n, "seconds": seconds,
        "own_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_cpu": workers.cpu_s,
        "worker_mb": max(workers.peak_mb,
                         resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}))


def _run_child(tree: Path, args: list[str]) -> dict:
    import os

    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--tree", str(tree),
                           *args], capture_output=True, text=True, cwd=tree, env=env)
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{tree}: the child {args} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def builders(sizes: list[int], before: str) -> None:
    """Each size, each tree (``--before`` first, then this one), in fresh children."""
    before, base = _before_tree(before)
    trees = [(f"before ({before[:12]})", base)] if base is not None else []
    trees.append(("after (this tree)", ROOT))
    results: dict[str, list[tuple[dict, dict]]] = {}
    for label, tree in trees:
        results[label] = [(_run_child(tree, ["--builders", "--child", str(n)]),
                           _run_child(tree, ["--builders", "--bot-child", str(n)]))
                          for n in sizes]
    if base is not None and base != Path(before).resolve():
        shutil.rmtree(base, ignore_errors=True)
    for label, runs in results.items():
        print(label)
        print(f"{'indicators':>10} {'workbook s':>10} {'pdf s':>8} {'chart s':>8} {'sum s':>8} "
              f"{'(cpu s)':>8} {'peak MB':>8} {'as built s':>11} {'workers cpu s':>14} "
              f"{'worker MB':>10} {'ms/indicator':>13}")
        for r, b in runs:
            t = r["times"]
            total = sum(t.values())
            workers = "+".join(f"{c:.1f}" for c in b.get("worker_cpu", []) if c >= 0.05)
            print(f"{r['n']:>10} {t['workbook']:>10.2f} {t['pdf']:>8.2f} {t['chart']:>8.2f} "
                  f"{total:>8.2f} {sum(r['cpu'].values()):>8.2f} {r['peak_mb']:>8.0f} "
                  f"{b['seconds']:>11.2f} {workers:>14} "
                  f"{b['worker_mb']:>10.0f} {b['seconds'] / r['n'] * 1000:>13.2f}")
    r, b = results["after (this tree)"][-1]
    worst = max(r["peak_mb"], b["worker_mb"])
    print(f"target: {r['n']} indicators under 10 s and 300 MB: as built {b['seconds']:.2f} s "
          f"({'MET' if b['seconds'] < 10 else 'NOT MET'}), {worst:.0f} MB "
          f"({'MET' if worst < 300 else 'NOT MET'})")
    print("sum s: the three builders one after the other in one process, modules already "
          "imported (cpu s: its CPU seconds); as built s: build_off_loop as the bot calls it "
          "(worker processes started, builders imported, files built, hashed and stored), "
          "workers cpu s: the CPU seconds of each worker process meanwhile")


# ------------------------------------------------------------------ the real path
def _load_example_data_helper():
    """``add_cycle_indicators`` of this tree's ``bot/devtools/example_data.py``, whatever code the
    child runs (the baseline's tree may not have it; it only needs ``models``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_example_data", ROOT / "bot" / "devtools" / "example_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.add_cycle_indicators


def _descendants() -> list[int]:
    """This process's descendants (its worker processes, and theirs), from the
    ``children`` lists of /proc (a few small reads: the sampling thread must not take
    the bot's interpreter lock for long)."""
    import os

    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


class PeakOfWorkers:
    """The largest peak RSS (VmHWM) of any descendant process, and the CPU seconds each
    used meanwhile, sampled every 50 ms while running (a worker forked by a forkserver
    is no child of ours: the rusage of children does not see it)."""

    def __init__(self) -> None:
        import os
        import threading

        self.peak_mb = 0.0
        self._tick = os.sysconf("SC_CLK_TCK")
        self._cpu: dict[int, float] = {}
        self._base = {pid: self._cpu_of(pid) or 0.0 for pid in _descendants()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu_of(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    @property
    def new_pids(self) -> list[int]:
        """The processes started while sampled."""
        return [pid for pid in self._cpu if pid not in self._base]

    @property
    def cpu_s(self) -> list[float]:
        """CPU seconds of each worker while sampled, largest first."""
        return sorted((cpu - self._base.get(pid, 0.0) for pid, cpu in self._cpu.items()),
                      reverse=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for pid in _descendants():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
                cpu = self._cpu_of(pid)
                if cpu is not None:
                    self._cpu[pid] = cpu

    def __enter__(self) -> "PeakOfWorkers":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _real(n: int, label: str) -> dict:
    import asyncio
    import resource

    from sqlalchemy import event, func, select

    from bot.core.clock import ManualClock
    from bot.config import Config
    from bot.core.documents import document_data
    from bot.devtools.example_data import example_office
    from bot.devtools.harness import Harness
    from bot.core.office_data import apply_office
    from bot.core.services import build_services
    from bot.core.workflow import Workflow
    from models import Base, Cycle, CycleIndicator
    from models.enums import Role
    from models.session import make_engine, make_sessionmaker
    from tests.e2e import People
    from tests.test_documents_service import drive_to_compile
    from tests.test_workflow import Walk
    from tests.conftest import wib

    folder = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    cfg = Config()
    cfg.base_dir = folder
    cfg.database.url = f"sqlite:///{folder / 'bench.db'}"
    cfg.storage.path = str(folder / "files")
    engine = make_engine(cfg.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sm = make_sessionmaker(engine)
    clock = ManualClock(wib(2024, 10, 7, 8, 0))
    sv = build_services(cfg, clock)
    async with sm() as s, s.begin():
        await apply_office(s, example_office(2024))
    h = Harness(sv, sm)
    await h.start()
    try:
        people = await People(h).load((Role.KASUBAG, None), (Role.STAF, "PPTK"))
        kasubag, staf = people.user(Role.KASUBAG), people.user(Role.STAF, "PPTK")
        cycle_id, _run6 = await drive_to_compile(Walk(sm, sv, clock))
        async with sm() as s, s.begin():
            await _load_example_data_helper()(s, cycle_id, n,
                                              answered_by=people.person(Role.KASUBAG).id)
        async with sm() as s:
            total = (await s.execute(select(func.count(CycleIndicator.id)).where(
                CycleIndicator.cycle_id == cycle_id))).scalar_one()
        await h.sender.drain()

        statements = [0]

        def count(*_args):
            statements[0] += 1

        # the data loading alone, as the compile does it: statements (of its own
        # connection: not the background sender's) and seconds
        async with sm() as s:
            conn = (await s.connection()).sync_connection
            event.listen(conn, "before_cursor_execute", count)
            t0 = time.perf_counter()
            wf = Workflow(s, sv)
            data = await document_data(wf, await s.get(Cycle, cycle_id), version=1)
            load_s = time.perf_counter() - t0
            event.remove(conn, "before_cursor_execute", count)
        load_statements = statements[0]
        assert len(data.rows) == total
        del data

        def has_label(label):
            return lambda m: any(label in text for text in m.button_texts)

        card = await kasubag.wait_for(predicate=has_label("Susun dokumen"))
        rss_before = _rss_mb()
        statements[0] = 0
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        workers = PeakOfWorkers().__enter__()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        q = await kasubag.press(card, text="Susun dokumen")
        result_task = asyncio.ensure_future(kasubag.wait_for(
            after=q, predicate=has_label("Ajukan untuk paraf"), timeout=900))
        latencies = []
        while not result_task.done():
            sent_at = time.perf_counter()
            sent = await staf.send_command("/bantuan")
            await staf.wait_for(after=sent, timeout=900)
            latencies.append(time.perf_counter() - sent_at)
        await result_task
        press_to_card = time.perf_counter() - t0
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers.__exit__()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        bot_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        worker_cpu = workers.cpu_s
        worker_peak = max(workers.peak_mb,
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    finally:
        await h.stop()
        await engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0

    return {"label": label, "indicators": total, "load_statements": load_statements,
            "load_s": load_s, "press_to_card_s": press_to_card,
            "statements_press_to_card": statements[0], "peak_mb": peak,
            "worker_peak_mb": worker_peak, "bot_cpu_s": bot_cpu,
            "worker_cpu_s": sum(worker_cpu), "largest_worker_cpu_s": max(worker_cpu, default=0),
            "rss_before_mb": rss_before, "pings": len(latencies), "p50_s": pct(0.5),
            "p95_s": pct(0.95), "max_s": latencies[-1] if latencies else 0}


def real_child(n: int, label: str) -> None:
    import asyncio
    import logging

    logging.disable(logging.WARNING)
    import warnings

    warnings.simplefilter("ignore")
    print(json.dumps(asyncio.run(_real(n, label))))


def _baseline_tree(before: str) -> Path | None:
    if before == "none":
        return None
    if Path(before).is_dir():
        return Path(before).resolve()
    folder = Path(tempfile.mkdtemp(prefix="bench-before-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", before], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _before_tree(before: str) -> tuple[str, Path | None]:
    """(the revision or folder named, its tree) for ``--before``."""
    if before == "base":
        before = subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                check=True, capture_output=True, text=True).stdout.strip()
    return before, _baseline_tree(before)


def real(n: int, before: str) -> None:
    import os

    runs = []
    before, base = _before_tree(before)
    for label, tree in ((f"before ({before[:12]})", base), ("after (this tree)", ROOT)):
        if tree is None:
            continue
        env = dict(os.environ, PYTHONPATH=str(tree))
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--real-child",
                               str(n), "--label", label], capture_output=True, text=True,
                              cwd=tree, env=env)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{label}: the child failed")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if base is not None and base != Path(before).resolve():
        shutil.rmtree(base, ignore_errors=True)
    rows = [("indicators in the cycle", "indicators", "{:.0f}"),
            ("statements to load the data", "load_statements", "{:.0f}"),
            ("seconds to load the data", "load_s", "{:.2f}"),
            ("press -> card, seconds", "press_to_card_s", "{:.2f}"),
            ("statements press -> card (all tasks)", "statements_press_to_card", "{:.0f}"),
            ("CPU s press -> card: the bot process", "bot_cpu_s", "{:.2f}"),
            ("CPU s press -> card: worker processes", "worker_cpu_s", "{:.2f}"),
            ("CPU s press -> card: the busiest worker", "largest_worker_cpu_s", "{:.2f}"),
            ("peak RSS of the bot, MB", "peak_mb", "{:.0f}"),
            ("peak RSS of a worker process, MB", "worker_peak_mb", "{:.0f}"),
            ("RSS before the press, MB", "rss_before_mb", "{:.0f}"),
            ("other person: replies", "pings", "{:.0f}"),
            ("other person: p50 s", "p50_s", "{:.3f}"),
            ("other person: p95 s", "p95_s", "{:.3f}"),
            ("other person: max s", "max_s", "{:.3f}")]
    print(f"{'':38}" + "".join(f"{r['label']:>22}" for r in runs))
    for title, key, fmt in rows:
        print(f"{title:38}" + "".join(f"{fmt.format(r[key]):>22}" for r in runs))
    after = runs[-1]
    print(f"targets ({after['indicators']} indicators): press->card < 10 s: "
          f"{'MET' if after['press_to_card_s'] < 10 else 'NOT MET'}; peak < 300 MB: "
          f"{'MET' if max(after['peak_mb'], after['worker_peak_mb']) < 300 else 'NOT MET'}; "
          f"loading in a fixed number of "
          f"statements: {after['load_statements']}; other person's p95 < 1 s: "
          f"{'MET' if after['p95_s'] < 1 else 'NOT MET'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--builders", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--child", type=int)
    ap.add_argument("--bot-child", type=int)
    ap.add_argument("--tree")
    ap.add_argument("--indicators", type=int, default=5000)
    ap.add_argument("--before", default="base")
    ap.add_argument("--real-child", type=int)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    if args.real_child:
        sys.path.insert(0, str(Path.cwd()))
        real_child(args.real_child, args.label)
    elif args.builders and (args.child or args.bot_child):
        sys.path.insert(0, args.tree or str(Path.cwd()))
        child(args.child) if args.child else bot_child(args.bot_child)
    elif args.builders:
        builders(args.sizes, args.before)
    else:
        real(args.indicators, args.before)

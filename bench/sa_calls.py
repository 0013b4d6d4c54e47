"""Where an update's SQLAlchemy time goes, by the line of ours that made the call: each
``AsyncSession`` call (execute, get, flush, commit, run_sync, ...) is wrapped and the
thread CPU it took (the statement's own work included, and nothing of the other tasks:
no call here yields to the event loop) summed by its call site, over the loop of
``bench/bench_cpu.py`` (Kabids typing an answer and pressing "Lanjut"):

    python bench/sa_calls.py [--answers 200] [--indicators 40]

Printed per answer + press: milliseconds, calls, and the call site. A profiling aid,
not a benchmark against a baseline: the wrappers cost a little of their own."""
from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OURS = tuple(str(ROOT / d) + "/" for d in ("bot", "handlers", "models"))
# helpers that only pass a statement on: the site is their caller
PASSING = (str(ROOT / "bot" / "devtools"), str(ROOT / "models" / "session.py"))


def _site() -> str:
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if name.startswith(OURS) and not name.startswith(PASSING):
            return f"{f.f_code.co_name} {Path(name).relative_to(ROOT)}:{f.f_lineno}"
        f = f.f_back
    return "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--indicators", type=int, default=40)
    a = ap.parse_args()

    from sqlalchemy.ext.asyncio import AsyncSession

    import bench.bench_updates as bench_updates
    from bench.bench_cpu import measure

    stats: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    depth = [0]

    def wrap(name: str) -> None:
        own = getattr(AsyncSession, name)

        @functools.wraps(own)
        async def timed(*args, **kw):
            if depth[0]:  # a call inside a call: counted in the outer one
                return await own(*args, **kw)
            site, started = _site(), time.thread_time()
            depth[0] += 1
            try:
                return await own(*args, **kw)
            finally:
                depth[0] -= 1
                row = stats[f"{name} <- {site}"]
                row[0] += 1
                row[1] += time.thread_time() - started

        setattr(AsyncSession, name, timed)

    for name in ("execute", "scalar", "scalars", "get", "flush", "commit", "refresh",
                 "run_sync"):
        wrap(name)
    set_up = bench_updates.in_process_bot

    async def counted_after_set_up(*args, **kw):
        result = await set_up(*args, **kw)
        stats.clear()  # the loop's calls only
        return result

    bench_updates.in_process_bot = counted_after_set_up
    result = asyncio.run(measure(a.answers, None, a.indicators))
    n = result["answers"]
    total = sum(t for _c, t in stats.values())
    print(f"SQLite, {n} answers + presses, {a.indicators} indicators a bidang; CPU ms per "
          f"update while processed: typed answer {result['answer_ms']:.2f}, "
          f"press {result['press_ms']:.2f}")
    print(f"SQLAlchemy's calls: {total / n * 1000:.2f} ms per answer + press")
    print(f"{'ms':>7} {'calls':>6}  (per answer + press)  call <- site")
    for key, (calls, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"{seconds / n * 1000:7.3f} {calls / n:6.2f}  {key}")


if __name__ == "__main__":
    main()

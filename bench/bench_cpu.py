"""CPU per typed answer: what one update costs the bot's process, measured in CPU time
(``time.process_time``: every thread of the process, aiosqlite's included), which a busy
machine inflates far less than wall-clock time. Printed side by side for this tree and
for a ``git archive`` copy of another commit (``--before``, default ``main``), each run
in its own process, one after the other:

    python bench/bench_cpu.py [--before main] [--answers 60] [--repeat 3]
        [--database-url postgresql://...]   # a SCRATCH database: its tables are dropped

Kabids one after the other (``--indicators``, 20 by default), each alone, types an answer, waits for the "Tersimpan" card, presses "Lanjut",
waits for the next question, and so on (no round trip, no rate limiter, the Bot API
calls inside the update's transaction as at saturation). For each update the CPU the
process spent while the intake processed it (``Intake._process``) is noted, by kind:
the typed answer, the press. The emulator answering the bot's calls runs in the same
process and is counted in that time (it is the same for both trees); "whole loop" is
the CPU of the whole exchange, emulator and simulated person included, divided by the
number of answers. Figures are medians over the answers after the first five, and the
best of ``--repeat`` runs (the least disturbed by other work on the machine)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def measure(answers: int, url: str | None, indicators: int = 20,
                  py_spy: str | None = None, py_spy_out: str = "") -> dict:
    import logging

    from bench.bench_updates import in_process_bot
    from bot.devtools.emulator import BotApiEmulator
    from bot.devtools.harness import TEST_TOKEN
    from bot.telegram import intake as intake_module

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    samples: dict[str, list[float]] = {"message": [], "callback_query": []}
    own = intake_module.Intake._process

    async def timed(self, update_id, payload, *more, **named):
        started = time.process_time()
        try:
            return await own(self, update_id, payload, *more, **named)
        finally:
            kind = "message" if "message" in payload else "callback_query"
            samples[kind].append(time.process_time() - started)

    intake_module.Intake._process = timed
    people_n = -(-answers // indicators)  # Kabids, one after the other
    emu = BotApiEmulator(token=TEST_TOKEN)
    await emu.start()
    h, engine, users = await in_process_bot(emu, people_n, indicators, url=url,
                                            limiter=False)
    if hasattr(h.intake, "split_calls"):
        h.intake.split_calls = "never"
    for kind in samples:
        samples[kind].clear()
    spy = None
    if py_spy:  # the loop only, sampled (py-spy is not a dependency of the project)
        spy = subprocess.Popen([py_spy, "record", "-r", "400", "-f", "raw", "-o", py_spy_out,
                                "--threads", "--pid", str(os.getpid())],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    from bench.common import callgrind, settle_memory

    if os.environ.get("BENCH_CPU_CALLGRIND"):  # count the loop's instructions only
        callgrind("--instr=on")

    settle_memory()  # as sopbot run does once the bot is set up
    loop_cpu = time.process_time()
    for n in range(answers):
        user, k = users[n // indicators], n % indicators
        sent = await user.send_text(f"{80 + k},5")
        card = await user.wait_for(lambda m: "Tersimpan" in m.text, after=sent, timeout=60)
        q = await user.press(card, text="Lanjut")
        await user.wait_for(lambda m: bool(m.buttons) and (
            "Ringkasan data" in m.text or f"Indikator {k + 2} dari" in m.text),
            after=q, timeout=60)
    loop_cpu = time.process_time() - loop_cpu
    if os.environ.get("BENCH_CPU_CALLGRIND"):
        callgrind("--instr=off")
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    await h.stop_bot()
    await engine.dispose()
    await emu.stop()
    skip = 5
    return {"answer_ms": statistics.median(samples["message"][skip:]) * 1000,
            "press_ms": statistics.median(samples["callback_query"][skip:]) * 1000,
            "loop_ms": loop_cpu / answers * 1000, "answers": answers}


def run_tree(tree: Path, answers: int, repeat: int, url: str | None,
             callgrind: bool = False, indicators: int = 20) -> dict:
    """The best of ``repeat`` runs of this script's measurement in ``tree``; with
    ``callgrind``, one run under valgrind counting the instructions of the loop."""
    best: dict | None = None
    for _ in range(1 if callgrind else repeat):
        cmd = [sys.executable, str(tree / "bench" / "bench_cpu.py"), "--child",
               "--answers", str(answers), "--indicators", str(indicators)]
        if url:
            cmd += ["--database-url", url]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        out_file = None
        if callgrind:
            out_file = Path(tempfile.mkdtemp(prefix="sopbot-callgrind-")) / "out"
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={out_file}"] + cmd
            env["BENCH_CPU_CALLGRIND"] = "1"
        out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"measurement in {tree} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if out_file is not None:
            from bench.common import callgrind_total

            result["instructions"] = callgrind_total(out_file.read_text()) / answers
        if best is None or result["answer_ms"] < best["answer_ms"]:
            best = result
    return best


def before_tree(ref: str) -> Path:
    """A ``git archive`` copy of ``ref`` with this script, the update bench and their
    shared set-up."""
    tree = Path(tempfile.mkdtemp(prefix="sopbot-before-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for name in ("bench_cpu.py", "bench_updates.py", "common.py"):
        (tree / "bench" / name).write_bytes((ROOT / "bench" / name).read_bytes())
    return tree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="main",
                    help="the commit to compare with (a git archive copy); 'none': no comparison")
    ap.add_argument("--answers", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--indicators", type=int, default=20,
                    help="indicators of each Kabid's bidang (a real office: up to 40)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--callgrind", action="store_true",
                    help="also one run of each tree under valgrind: instructions per answer "
                         "+ press (repeatable where CPU time is not; about 50 times slower)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--py-spy", nargs=2, metavar=("PY_SPY", "OUT"), default=None,
                    help="with --child: sample the loop with this py-spy executable into OUT "
                         "(raw collapsed stacks)")
    a = ap.parse_args()
    if a.child:
        spy, out = a.py_spy or (None, "")
        print(json.dumps(asyncio.run(measure(a.answers, a.database_url, a.indicators,
                                             py_spy=spy, py_spy_out=out))))
        return
    trees = []
    if a.before != "none":
        rev = subprocess.run(["git", "rev-parse", "--short", a.before], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        trees.append((f"before ({a.before} {rev})", before_tree(a.before)))
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    trees.append((f"after (this tree {rev})", ROOT))
    load = os.getloadavg()[0]
    rows = [(name, run_tree(tree, a.answers, a.repeat, a.database_url, indicators=a.indicators))
            for name, tree in trees]
    db = "PostgreSQL" if a.database_url else "SQLite"
    print(f"CPU ms per update, {db}, {a.answers} answers (Kabids of {a.indicators} indicators one after "
          f"the other), best of {a.repeat} runs, load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':<34} {'typed answer':>12} {'Lanjut press':>12} {'whole loop':>11}")
    for name, r in rows:
        print(f"{name:<34} {r['answer_ms']:>12.2f} {r['press_ms']:>12.2f} {r['loop_ms']:>11.2f}")
    if len(rows) == 2:
        b, n = rows[0][1], rows[1][1]
        print(f"{'after / before':<34} {n['answer_ms'] / b['answer_ms']:>12.0%} "
              f"{n['press_ms'] / b['press_ms']:>12.0%} {n['loop_ms'] / b['loop_ms']:>11.0%}")
    if a.callgrind:
        counted = [(name, run_tree(tree, a.answers, 1, a.database_url, callgrind=True,
                                   indicators=a.indicators))
                   for name, tree in trees]
        print("instructions per answer + press, whole process (valgrind --tool=callgrind, "
              "the loop only)")
        for name, r in counted:
            print(f"{name:<34} {r['instructions'] / 1e6:>10.1f} M")
        if len(counted) == 2:
            print(f"{'after / before':<34} "
                  f"{counted[1][1]['instructions'] / counted[0][1]['instructions']:>10.0%}")

if __name__ == "__main__":
    main()

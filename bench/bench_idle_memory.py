"""Memory and CPU of an idle bot process with N registered people.

    python bench/bench_idle_memory.py [--people 2000] [--cpu-seconds 20]

Seeds a SQLite database with N registered people, starts `sopbot run` as its own process
against the local emulator, lets it settle, and prints its resident memory (VmRSS) and
peak (VmHWM) from /proc, then the CPU it uses while nothing happens (user + system, over
``--cpu-seconds``: its periodic passes, the outbox sender's look for due messages, the
inbox's, the long poll)."""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.devtools.emulator import EmulatorThread  # noqa: E402
from bot.devtools.example_data import example_office  # noqa: E402
from bot.core.office_data import apply_office  # noqa: E402
from models import Person  # noqa: E402
from models.enums import Role  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.session import make_engine, make_sessionmaker  # noqa: E402


def rss(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


async def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        office = await apply_office(s, example_office(2024))
        for i in range(n):
            s.add(Person(office_id=office.id, name=f"Pegawai {i}", role=Role.STAF,
                         nip=f"{199000000000000000 + i}", telegram_user_id=5_000_000 + i))
    await engine.dispose()


def main(n: int, settle: float, cpu_seconds: float = 20.0) -> None:
    from bench.common import process_cpu

    folder = Path(tempfile.mkdtemp(prefix="sopbot-mem-"))
    url = f"sqlite:///{folder / 'bot.db'}"
    upgrade(url)
    asyncio.run(seed(url, n))
    with EmulatorThread() as emu:
        cfg = folder / "config.toml"
        cfg.write_text(f'[telegram]\napi_base_url = "{emu.base_url}"\n'
                       f'file_base_url = "{emu.base_file_url}"\n[database]\nurl = "{url}"\n')
        env = dict(os.environ, SOPBOT_TELEGRAM_TOKEN="1:bench")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "run"],
                                cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(settle)
            now, peak = rss(proc.pid)
            cpu = process_cpu(proc.pid)
            time.sleep(cpu_seconds)
            cpu = process_cpu(proc.pid) - cpu
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print(f"registered people       : {n}")
    print(f"idle bot RSS            : {now} MB (peak {peak} MB) after {settle:.0f} s")
    print(f"idle bot CPU            : {cpu / cpu_seconds * 1000:.1f} ms per second over "
          f"{cpu_seconds:.0f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--settle", type=float, default=8.0)
    ap.add_argument("--cpu-seconds", type=float, default=20.0)
    args = ap.parse_args()
    main(args.people, args.settle, args.cpu_seconds)

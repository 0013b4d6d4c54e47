"""`sopbot demo`: one full cycle of the SOP, played by simulated people over real HTTP.

Nothing to configure: a fresh SQLite database in the demo folder (``./sopbot-demo`` by
default), the example office (marked DATA CONTOH), the local Bot API emulator and the
bot. Simulated time (a movable clock) runs from Monday 7 October 2024, so the timeline
shows working time the way the office would live it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.devtools.scenario import Player, ScriptedCycle
from bot.core.storage import write_private

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2024, 10, 7, 8, 0, tzinfo=WIB)  # Monday after Triwulan III
YEAR, QUARTER = 2024, 3


# the offices of `sopbot demo --offices N` beyond the example office (DATA CONTOH): the
# same workbook under another unit code and name, in another time zone
MORE_OFFICES = (("II.09", "Dinas Kesehatan", "Asia/Makassar", "WITA"),
                ("II.10", "Dinas Pendidikan dan Kebudayaan", "Asia/Jayapura", "WIT"))
MAX_OFFICES = 1 + len(MORE_OFFICES)


class Progress:
    def __init__(self, total: int, out=sys.stdout, label: str = "") -> None:
        self.total = total
        self.out = out
        self.label = label  # several offices at once: each line names its office
        self.t0 = time.perf_counter()

    def step(self, n: int, text: str, clock) -> None:
        bar = "#" * n + "." * (self.total - n)
        when = clock.now().astimezone(WIB).strftime("%a %d/%m %H.%M")
        print(f"{self.label}[{bar}] {n:>2}/{self.total} {text}  (waktu simulasi {when} WIB, "
              f"{time.perf_counter() - self.t0:.1f} dtk)", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"{self.label}{'':>{self.total + 9}}{text}", file=self.out, flush=True)


class DemoPlayer(Player):
    """Patient people on the demo's movable clock, reporting progress."""

    def __init__(self, clock, progress: Progress) -> None:
        super().__init__(clock)
        self.progress = progress

    def step(self, n: int, text: str) -> None:
        self.progress.step(n, text, self.clock)

    def note(self, text: str) -> None:
        self.progress.note(text[:100])


@dataclass
class DemoResult:
    out: Path
    cycle_id: int
    files: dict[str, Path]
    seconds: float


class Demo:
    """The demo's office, bot and people; ``office`` (a function of the year giving an
    ``OfficeSpec``) and ``script`` (``ScriptedCycle`` options: answers, schedule, ...)
    replace the example office and its script (the large-office test does)."""

    def __init__(self, out: Path, *, quiet: bool = False, office=None,
                 script: dict | None = None, offices: int = 1) -> None:
        if not 1 <= offices <= MAX_OFFICES:
            raise ValueError(f"the demo plays 1 to {MAX_OFFICES} offices")
        self.out = Path(out).resolve()  # the config resolves paths against it
        self.quiet = quiet
        self.office = office
        self.script_options = dict(script or {})
        self.offices = offices
        self.office_ids: list[int] = []  # the example office first

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True, mode=0o700)  # the database and files inside are 0600
        os.chmod(self.out, 0o700)

    async def setup(self) -> None:
        from bot.core.clock import ManualClock
        from bot.config import Config
        from bot.devtools.example_data import example_office
        from bot.devtools.harness import Harness
        from bot.core.office_data import apply_office
        from bot.core.services import build_services
        from models.migrate import upgrade_engine
        from models.session import make_engine, make_sessionmaker

        cfg = Config()
        cfg.base_dir = self.out
        cfg.database.url = f"sqlite:///{self.out / 'sopbot-demo.db'}"
        cfg.storage.path = str(self.out / "files")
        cfg.office.address = ("Jalan Raden Intan Nomor 1, Way Mengaku, Liwa 34812 - "
                              "Telepon (0728) 21000")  # DATA CONTOH: the kop's address
        self.certificates = self.demo_certificates(cfg)
        self.clock = ManualClock(START)
        self.services = build_services(cfg, self.clock)
        self.engine = make_engine(cfg.database_url)
        await upgrade_engine(self.engine)
        self.sm = make_sessionmaker(self.engine)
        async with self.sm() as s, s.begin():
            first = await apply_office(s, (self.office or example_office)(YEAR))
            self.office_ids = [first.id]
            for code, name, zone, _label in MORE_OFFICES[:self.offices - 1]:
                more = dataclasses.replace(example_office(YEAR), name=name, unit_code=code,
                                           settings={"calendar": {"timezone": zone}})
                self.office_ids.append((await apply_office(s, more)).id)
        self.h = Harness(self.services, self.sm)
        await self.h.start()
        await self.h.register_all()

    def demo_certificates(self, cfg):
        """A throw-away CA and signer certificate (DATA CONTOH) in the demo folder, so
        the final PDF carries a PAdES signature that can be verified against the CA."""
        from bot.core.signing import make_demo_certificates

        certs = make_demo_certificates(self.out / "sertifikat-contoh",
                                       f"{cfg.office.name} {cfg.office.regency}")
        cfg.signing.pkcs12_path = str(certs.pkcs12)
        cfg.signing.passphrase = certs.passphrase  # in memory only; the file is throw-away
        cfg.signing.trust_roots = [str(certs.ca_cert)]
        return certs

    def write_config(self) -> Path:
        """The demo's own config.toml (its database, files and demo CA), so the usual
        commands (verify, archive, audit verify, people list) work on what it made."""
        path = self.out / "config.toml"
        write_private(path, (
            "# Config peragaan (DATA CONTOH): basis data, berkas dan CA contoh peragaan ini.\n"
            "[database]\nurl = \"sqlite:///sopbot-demo.db\"\n"
            "[storage]\npath = \"files\"\n"
            f"[signing]\ntrust_roots = [\"{self.certificates.ca_cert.relative_to(self.out)}\"]\n"
        ).encode())
        return path

    async def print_commands(self, cycle_id: int, files: dict[str, Path], stream) -> None:
        from models import Document

        config = self.write_config()
        async with self.sm() as s:
            code = (await s.execute(select(Document.verification_code).where(
                Document.cycle_id == cycle_id, Document.verification_code.is_not(None))
                .order_by(Document.version.desc()))).scalars().first()
        base = f"sopbot --config {config}"
        print("\nPeriksa hasil peragaan dengan perintah biasa (config peragaan di atas "
              "menunjuk basis data, berkas dan CA contohnya):", file=stream)
        if code:
            print(f"  {base} verify {code}", file=stream)
        print(f"  {base} verify {files['pdf']}", file=stream)
        print(f"  {base} audit verify", file=stream)
        print(f"  {base} archive {cycle_id} arsip-saya.zip", file=stream)
        print(f"  {base} people list", file=stream)

    async def close(self) -> None:
        await self.h.stop()
        await self.engine.dispose()

    # ------------------------------------------------------------------ the cycle
    async def run_cycle(self, progress: Progress, office_id: int | None = None) -> int:
        """The cycle of :mod:`bot.devtools.scenario`, on the demo's simulated clock (of
        the office ``office_id``: several offices play at once on the one clock)."""
        script = ScriptedCycle(self.sm, self.h.users, DemoPlayer(self.clock, progress),
                               period=f"Triwulan III Tahun {YEAR}", office_id=office_id,
                               **self.script_options)
        if office_id is None:
            self.script = script
        return await script.run()

    # ------------------------------------------------------------------ reporting
    async def timeline(self, cycle_id: int) -> list[str]:
        from bot.texts import duration_text, role_title
        from models import Person, StepRun, Unit

        sv = self.services
        lines = [f"{'Langkah':<8}{'Pelaksana':<42}{'Standar':<10}{'Mulai':<17}{'Selesai':<17}"
                 f"{'Waktu kerja':<22}Status"]
        async with self.sm() as s:
            runs = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle_id)
                                    .order_by(StepRun.step_no, StepRun.id))).scalars().all()
            for r in runs:
                step = sv.sop.step(r.step_no)
                who = await s.get(Person, r.assignee_id)
                unit = await s.get(Unit, r.unit_id) if r.unit_id else None
                label = f"{role_title(r.role)}: {who.name}"[:40]
                if unit:
                    label = f"{unit.code} {who.name}"[:40]
                start = r.started_at.astimezone(WIB).strftime("%d/%m %H.%M")
                end = r.completed_at.astimezone(WIB).strftime("%d/%m %H.%M") if r.completed_at else "-"
                minutes = sv.calendar.working_minutes_between(r.started_at, r.completed_at) \
                    if r.completed_at else 0
                late = r.completed_at and r.due_at and r.completed_at > r.due_at
                status = {"done": "selesai", "returned": "dikembalikan",
                          "skipped": "ditutup"}.get(r.status.value, r.status.value)
                if late:
                    status += " (terlambat)"
                lines.append(f"{step.number:<8}{label:<42}{step.time.text:<10}{start:<17}{end:<17}"
                             f"{duration_text(minutes, sv.day_minutes):<22}{status}")
        return lines

    async def export(self, cycle_id: int, office_code: str | None = None) -> dict[str, Path]:
        """The cycle's final documents, archive and agenda book; of one of several
        offices (``office_code``): in a folder of that office."""
        from models import Document, StoredFile

        base = self.out / f"kantor-{office_code}" if office_code else self.out
        base.mkdir(exist_ok=True, mode=0o700)
        docs = base / "dokumen"
        docs.mkdir(exist_ok=True, mode=0o700)
        files: dict[str, Path] = {}
        async with self.sm() as s:
            doc = (await s.execute(select(Document).where(Document.cycle_id == cycle_id)
                                   .order_by(Document.version.desc()))).scalars().first()
            stem = f"Pengukuran-Kinerja-{YEAR}-TW{QUARTER}-final"
            for kind, fid, ext in (("workbook", doc.workbook_file_id, "xlsx"),
                                   ("pdf", doc.pdf_file_id, "pdf"),
                                   ("grafik", doc.chart_file_id, "png")):
                stored = await s.get(StoredFile, fid)
                target = docs / f"{stem}.{ext}"
                write_private(target, self.services.store.read(stored))
                files[kind] = target
        from bot.core.archive import build_archive, export_agenda

        archive = base / f"arsip-siklus-{cycle_id}.zip"
        agenda = base / "buku-agenda.xlsx"
        async with self.sm() as s:
            await build_archive(s, self.services.store, cycle_id, archive,
                                services=self.services)
            await export_agenda(s, agenda, year=YEAR, office=office_code)
        files["arsip"] = archive
        files["agenda"] = agenda
        return files


async def run_demo(out: Path, *, keep_running: bool = False, stream=None) -> DemoResult:
    stream = stream if stream is not None else sys.stdout  # today's stdout, not import time's
    t0 = time.perf_counter()
    demo = Demo(out)
    demo.prepare()
    print(f"Peragaan Bot SOP Data Kinerja - DATA CONTOH\nFolder keluaran: {demo.out.resolve()}",
          file=stream)
    await demo.setup()
    print(f"Emulator Bot API lokal: {demo.h.emulator.url}  |  {len(demo.h.users)} pegawai "
          f"terdaftar lewat kode undangan", file=stream)
    progress = Progress(11, stream)
    try:
        cycle_id = await demo.run_cycle(progress)
        await demo.h.settle(timeout=60.0)  # the last notifications, paced per chat
        print("\nLini waktu (waktu simulasi, WIB; waktu kerja = jam kantor, hari libur "
              "dikecualikan):", file=stream)
        for line in await demo.timeline(cycle_id):
            print("  " + line, file=stream)
        files = await demo.export(cycle_id)
        print("\nDokumen yang dihasilkan:", file=stream)
        for kind, path in files.items():
            print(f"  {kind:<9} {path.resolve()}", file=stream)
        await demo.print_commands(cycle_id, files, stream)
        seconds = time.perf_counter() - t0
        print(f"\nSelesai dalam {seconds:.1f} detik.", file=stream)
        if keep_running:
            await _keep_running(demo, stream)
    finally:
        await demo.close()
    return DemoResult(out=demo.out, cycle_id=cycle_id, files=files, seconds=seconds)


async def run_demo_offices(out: Path, offices: int, *, keep_running: bool = False,
                           stream=None) -> list[DemoResult]:
    """``sopbot demo --offices N``: the example office and N-1 more (another unit code,
    name and time zone each, their own people) play their cycles at once on one bot
    and one database; each office's letter number is counted from 1 in that office."""
    from models import LetterNumber, Office

    stream = stream if stream is not None else sys.stdout
    t0 = time.perf_counter()
    demo = Demo(out, offices=offices)
    demo.prepare()
    print(f"Peragaan Bot SOP Data Kinerja - {offices} kantor sekaligus - DATA CONTOH\n"
          f"Folder keluaran: {demo.out.resolve()}", file=stream)
    await demo.setup()
    async with demo.sm() as s:
        rows = [await s.get(Office, i) for i in demo.office_ids]
    zones = {o.id: demo.services.for_office(o).calendar.tz.key for o in rows}
    labels = {z: label for _c, _n, z, label in MORE_OFFICES}
    print(f"Emulator Bot API lokal: {demo.h.emulator.url}  |  {len(demo.h.users)} pegawai "
          f"dari {offices} kantor terdaftar lewat kode undangan", file=stream)
    for o in rows:
        print(f"  {o.unit_code:<7} {o.name} ({labels.get(zones[o.id], 'WIB')})", file=stream)
    results: list[DemoResult] = []
    try:
        cycles = await asyncio.gather(*(
            demo.run_cycle(Progress(11, stream, label=f"{o.unit_code:<7} "), o.id)
            for o in rows))
        await demo.h.settle(timeout=60.0)
        print("\nDokumen yang dihasilkan, per kantor:", file=stream)
        for o, cycle_id in zip(rows, cycles):
            files = await demo.export(cycle_id, o.unit_code)
            async with demo.sm() as s:
                number = (await s.execute(select(LetterNumber.number).where(
                    LetterNumber.cycle_id == cycle_id))).scalar()
            print(f"\n  {o.name} (kode unit {o.unit_code}, "
                  f"{labels.get(zones[o.id], 'WIB')}): surat nomor {number}", file=stream)
            for kind, path in files.items():
                print(f"    {kind:<9} {path.resolve()}", file=stream)
            results.append(DemoResult(out=demo.out, cycle_id=cycle_id, files=files,
                                      seconds=0.0))
        config = demo.write_config()
        print(f"\nDaftar kantor: sopbot --config {config} office list", file=stream)
        seconds = time.perf_counter() - t0
        for r in results:
            r.seconds = seconds
        print(f"\nSelesai dalam {seconds:.1f} detik.", file=stream)
        if keep_running:
            await _keep_running(demo, stream)
    finally:
        await demo.close()
    return results


async def _keep_running(demo: Demo, stream) -> None:
    url = demo.h.emulator.url
    users = sorted(demo.h.users.items())
    print("\nEmulator dan bot tetap berjalan (Ctrl-C untuk berhenti). Contoh:", file=stream)
    uid = users[0][1].user_id
    print(f"  sopbot emulator chat {uid} --url {url}   (obrolan sebagai baris teks dan tombol)",
          file=stream)
    print(f"  curl -s {url}/_emu/users/{uid}/messages", file=stream)
    print(f"  curl -s -X POST {url}/_emu/users/{uid}/send -H 'Content-Type: application/json' "
          f"-d '{{\"text\": \"/status\"}}'", file=stream)
    print(f"  curl -s -X POST {url}/_emu/users/{uid}/press -H 'Content-Type: application/json' "
          f"-d '{{\"message_id\": 1, \"text\": \"...\"}}'", file=stream)
    print("  Pengguna: " + ", ".join(f"{u.user_id}={u.first_name}" for _, u in users), file=stream)
    try:
        while True:
            await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass



"""`sopbot demo`: one full cycle of the SOP, played by simulated people over real HTTP.

Nothing to configure: a fresh SQLite database in the demo folder (``./sopbot-demo`` by
default), the example office (marked DATA CONTOH), the local Bot API emulator and the
bot. Simulated time (a movable clock) runs from Monday 7 October 2024, so the timeline
shows working time the way the office would live it.
"""
from __future__ import annotations

import asyncio
import shutil
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2024, 10, 7, 8, 0, tzinfo=WIB)  # Monday after Triwulan III
YEAR, QUARTER = 2024, 3

# what each bidang reports (the Bidang Perindustrian first sends a wrong investment figure)
ANSWERS: dict[str, list[tuple[str, str]]] = {
    "SEK": [("SEK-01", "BB"), ("SEK-02", "100"), ("SEK-03", "68,4"), ("SEK-04", "83,2"),
            ("SEK-05", "77,5")],
    "PPTK": [("PPTK-01", "4,05"), ("PPTK-02", "88,5"), ("PPTK-03", "64"), ("PPTK-04", "195"),
             ("PPTK-05", "26"), ("PPTK-06", "150")],
    "HIJS": [("HIJS-01", "100"), ("HIJS-02", "55"), ("HIJS-03", "41,3"), ("HIJS-04", "8"),
             ("HIJS-05", "31")],
    "IND": [("IND-01", "72"), ("IND-02", "2,4"), ("IND-03", "15"), ("IND-04", "21"),
            ("IND-05", "Rp 875.000.000")],
}
CORRECTION = ("IND-05", "Rp 8.750.000.000")
EVIDENCE = {"PPTK-02": "photo", "SEK-03": "pdf"}


def _png(width: int = 64, height: int = 48) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\x30\x90\x50" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


class Progress:
    def __init__(self, total: int, out=sys.stdout) -> None:
        self.total = total
        self.out = out
        self.t0 = time.perf_counter()

    def step(self, n: int, text: str, clock) -> None:
        bar = "#" * n + "." * (self.total - n)
        when = clock.now().astimezone(WIB).strftime("%a %d/%m %H.%M")
        print(f"[{bar}] {n:>2}/{self.total} {text}  (waktu simulasi {when} WIB, "
              f"{time.perf_counter() - self.t0:.1f} dtk)", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"{'':>{self.total + 9}}{text}", file=self.out, flush=True)


@dataclass
class DemoResult:
    out: Path
    cycle_id: int
    files: dict[str, Path]
    seconds: float


class Demo:
    def __init__(self, out: Path, *, quiet: bool = False) -> None:
        self.out = Path(out)
        self.quiet = quiet

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)

    async def setup(self) -> None:
        from bot.clock import ManualClock
        from bot.config import Config
        from bot.example_data import example_office
        from bot.harness import Harness
        from bot.office_data import apply_office
        from bot.services import build_services
        from models.migrate import upgrade_engine
        from models.session import make_engine, make_sessionmaker

        cfg = Config()
        cfg.base_dir = self.out
        cfg.database.url = f"sqlite:///{self.out / 'sopbot-demo.db'}"
        cfg.storage.path = str(self.out / "files")
        self.clock = ManualClock(START)
        self.services = build_services(cfg, self.clock)
        self.engine = make_engine(cfg.database_url)
        await upgrade_engine(self.engine)
        self.sm = make_sessionmaker(self.engine)
        async with self.sm() as s, s.begin():
            await apply_office(s, example_office(YEAR))
        self.h = Harness(self.services, self.sm)
        await self.h.start()
        await self.h.register_all()

    async def close(self) -> None:
        await self.h.stop()
        await self.engine.dispose()

    # ------------------------------------------------------------------ people
    async def user(self, role, unit_code: str | None = None):
        from models import Person, Unit

        async with self.sm() as s:
            stmt = select(Person).where(Person.role == role)
            if unit_code:
                stmt = stmt.join(Unit, Unit.id == Person.unit_id).where(Unit.code == unit_code)
            p = (await s.execute(stmt.order_by(Person.id))).scalars().first()
        return self.h.users[p.id], p

    def at(self, **delta) -> None:
        self.clock.advance(**delta)

    def at_time(self, day: int, hour: int, minute: int = 0) -> None:
        target = datetime(2024, 10, day, hour, minute, tzinfo=WIB)
        if target > self.clock.now():
            self.clock.set(target)

    @staticmethod
    async def press(user, msg, text=None, *, prefix=None, wait=None, timeout=15.0):
        if prefix is not None:
            button = next(b for b in msg.buttons if b.get("callback_data", "").startswith(prefix))
            q = await user.press(msg, data=button["callback_data"])
        else:
            q = await user.press(msg, text=text)
        if wait is None:
            return q
        return await user.wait_for(after=q, text_contains=wait, timeout=timeout)

    # ------------------------------------------------------------------ the cycle
    async def run_cycle(self, progress: Progress) -> int:
        from models.enums import Role

        # step 1
        kadis, _ = await self.user(Role.KADIS)
        sent = await kadis.send_command("/mulai")
        menu = await kadis.wait_for(after=sent, text_contains="Pilih periodenya")
        ask = await self.press(kadis, menu, "Triwulan III Tahun 2024", wait="instruksi")
        sent = await kadis.reply_to(ask, "Siapkan pengukuran kinerja Triwulan III Tahun 2024 "
                                         "sesuai SOP; laporkan ke Bappeda dan Inspektorat.")
        await kadis.wait_for(after=sent, text_contains="surat masuk")
        sent = await kadis.send_document(
            _pdf("DATA CONTOH - Surat masuk: permintaan laporan pengukuran kinerja TW III 2024"),
            "surat-masuk-bappeda.pdf", "application/pdf")
        await kadis.wait_for(after=sent, text_contains="dimulai")
        progress.step(1, "Kadis memulai siklus dan mendisposisi Sekretaris", self.clock)

        # step 2
        self.at(minutes=4)
        sek, _ = await self.user(Role.SEKRETARIS)
        card = await sek.wait_for(text_contains="Disposisi dari")
        ask = await self.press(sek, card, "Terima", wait="catatan disposisi")
        sent = await sek.reply_to(ask, "Koordinasikan dengan semua bidang, tenggat 3 hari kerja.")
        await sek.wait_for(after=sent, text_contains="diteruskan")
        progress.step(2, "Sekretaris meneruskan disposisi kepada Kasubag Perencanaan", self.clock)

        # step 3
        self.at(minutes=21)
        kasubag, _ = await self.user(Role.KASUBAG)
        card = await kasubag.wait_for(text_contains="Catatan Sekretaris")
        coord = await self.press(kasubag, card, "Koordinasikan bidang", wait="Koordinasi bidang")
        q = await kasubag.press(coord, text="3 hari")
        coord = await kasubag.wait_for(after=q, predicate=lambda m: "3 hari kerja" in m.text)
        await self.press(kasubag, coord, "Kirim permintaan data", wait="Permintaan data dikirim")
        progress.step(3, "Kasubag meminta data kepada 4 bidang (tenggat 3 hari kerja)", self.clock)

        # step 4: the four bidang answer, one with the help of a staf
        schedule = {"PPTK": (8, 10), "HIJS": (8, 14), "SEK": (9, 9), "IND": (9, 11)}
        for code, (day, hour) in schedule.items():
            self.at_time(day, hour)
            await self.enter_unit(code, handover="PPTK-04" if code == "PPTK" else None)
            progress.note(f"bidang {code} mengirim data")
        # the Kasubag returns the Bidang Perindustrian once (5 -> 4)
        self.at_time(9, 13)
        started = await kasubag.wait_for(text_contains="Semua bidang telah mengirim")
        sent = await kasubag.send_command("/status")
        board = await kasubag.wait_for(after=sent, text_contains="Siklus Triwulan III")
        ask = await self.press(kasubag, board, "Kembalikan data Bidang Perindustrian",
                               wait="alasan pengembalian")
        sent = await kasubag.reply_to(ask, "Nilai investasi tidak sesuai laporan DPMPTSP "
                                           "(kurang satu angka nol).")
        await kasubag.wait_for(after=sent, text_contains="dikembalikan kepada")
        progress.note("Kasubag mengembalikan data Bidang Perindustrian (langkah 5 -> 4)")
        self.at_time(10, 9)
        await self.correct_unit("IND")
        progress.step(4, "Semua bidang mengirim data kinerja (satu kali dikembalikan)", self.clock)

        # step 5
        self.at_time(11, 10)
        await self.press(kasubag, started, "Selesai mengolah data", wait="Pengolahan data selesai")
        progress.step(5, "Kasubag selesai mengolah data", self.clock)

        # step 6
        self.at_time(14, 9)
        card = await kasubag.wait_for(predicate=lambda m: any(
            b.get("callback_data", "").startswith("cmp:") for b in m.buttons))
        q = await self.press(kasubag, card, prefix="cmp:")
        ready = await kasubag.wait_for(after=q, predicate=lambda m: any(
            b.get("callback_data", "").startswith("subm:") for b in m.buttons), timeout=60)
        q = await self.press(kasubag, ready, prefix="subm:")
        await kasubag.wait_for(after=q)
        progress.step(6, "Kasubag menyusun dokumen (workbook, PDF, grafik) dan mengajukan paraf",
                      self.clock)

        # step 7
        self.at(minutes=8)
        card = await sek.wait_for(predicate=lambda m: "Paraf" in m.button_texts)
        q = await sek.press(card, text="Paraf")
        await sek.wait_for(after=q, predicate=lambda m: m.message_id == card.message_id
                           and "Paraf" not in m.button_texts)
        progress.step(7, "Sekretaris memaraf dokumen", self.clock)

        # step 8
        self.at(minutes=7)
        card = await kadis.wait_for(predicate=lambda m: "Tandatangani" in m.button_texts)
        q = await kadis.press(card, text="Tandatangani")
        await kadis.wait_for(after=q, predicate=lambda m: m.message_id == card.message_id
                             and "Tandatangani" not in m.button_texts)
        progress.step(8, "Kadis menandatangani dokumen", self.clock)

        # step 9
        self.at(minutes=3)
        staf, _ = await self.user(Role.STAF, "SEK")
        card = await staf.wait_for(predicate=lambda m: "Beri nomor" in m.button_texts)
        q = await staf.press(card, text="Beri nomor")
        numbered = await staf.wait_for(after=q, text_contains="/KPTS/", timeout=60)
        progress.step(9, "Staf memberi nomor surat dari buku agenda", self.clock)
        progress.note(next((ln for ln in numbered.text.splitlines() if "/KPTS/" in ln),
                           "")[:100])

        # step 10
        self.at(minutes=6)
        card = await kasubag.wait_for(predicate=lambda m: "Periksa & arsipkan" in m.button_texts)
        q = await kasubag.press(card, text="Periksa & arsipkan")
        await kasubag.wait_for(after=q, predicate=lambda m: m.message_id == card.message_id
                               and "Periksa & arsipkan" not in m.button_texts)
        progress.step(10, "Kasubag memeriksa dan mengarsipkan dokumen", self.clock)

        # step 11
        self.at(minutes=2)
        await self.deliver(staf)
        progress.step(11, "Dokumen disampaikan; tanda terima dari 3 OPD tercatat", self.clock)
        from models import Cycle

        async with self.sm() as s:
            return (await s.execute(select(Cycle.id))).scalar_one()

    async def enter_unit(self, code: str, handover: str | None = None) -> None:
        from models.enums import Role

        kabid, _ = await self.user(Role.KABID, code)
        request = await kabid.wait_for(text_contains="Permintaan data kinerja")
        card = await self.press(kabid, request, "Mulai isi data", wait="Indikator 1 dari")
        answers = ANSWERS[code]
        if handover:
            idx = [c for c, _ in answers].index(handover) + 1
            card = await self.press(kabid, card, "Serahkan ke staf", wait="Pilih indikatornya")
            card = await self.press(kabid, card, f"{idx}. ", wait="Serahkan")
            staf_user, staf_person = await self.user(Role.STAF, code)
            card = await self.press(kabid, card, staf_person.name, wait="diserahkan kepada")
            note = await staf_user.wait_for(text_contains="menyerahkan pengisian indikator")
            scard = await self.press(staf_user, note, "Mulai isi data", wait="Indikator 1 dari 1")
            scard = await self.answer(staf_user, scard, dict(answers)[handover], None)
            scard = await self.press(staf_user, scard, "Lanjut", wait="Ringkasan data")
            await self.press(staf_user, scard, "Selesai", wait="Terima kasih")
            await kabid.wait_for(text_contains="selesai mengisi")
            sent = await kabid.send_command("/batal")
            await kabid.wait_for(after=sent)
            q = await kabid.press(request, text="Mulai isi data")
            card = await kabid.wait_for(after=q, text_contains="Indikator")
        names = await self.indicator_names()
        by_name = dict(answers)

        def next_card(m) -> bool:
            return bool(m.buttons) and ("Ringkasan data" in m.text or (
                "Indikator " in m.text and " dari " in m.text and "Tersimpan" not in m.text))

        while "Ringkasan data" not in card.text:
            code_now = next(c for c, name in names.items() if c in by_name and name in card.text)
            if code_now == handover:  # answered by the staf: keep it
                q = await kabid.press(card, text="Tetap")
            else:
                card = await self.answer(kabid, card, by_name[code_now], EVIDENCE.get(code_now))
                q = await kabid.press(card, text="Lanjut")
            card = await kabid.wait_for(after=q, predicate=next_card)
        await self.press(kabid, card, "Kirim ke Kasubag", wait="telah dikirim")

    async def indicator_names(self) -> dict[str, str]:
        from models import Indicator

        async with self.sm() as s:
            return {c: n for c, n in (await s.execute(select(Indicator.code, Indicator.name)))}

    async def answer(self, user, card, value: str, evidence: str | None):
        sent = await user.send_text(value)
        msg = await user.wait_for(after=sent, predicate=lambda m: "Tersimpan" in m.text
                                  or "Periksa kembali" in m.text)
        if "Periksa kembali" in msg.text:
            msg = await self.press(user, msg, "Ya, benar", wait="Tersimpan")
        if evidence == "photo":
            sent = await user.send_photo(_png())
            msg = await user.wait_for(after=sent, text_contains="Bukti diterima")
        elif evidence == "pdf":
            sent = await user.send_document(_pdf("DATA CONTOH - laporan realisasi anggaran"),
                                            "realisasi-anggaran.pdf", "application/pdf")
            msg = await user.wait_for(after=sent, text_contains="Bukti diterima")
        return msg

    async def correct_unit(self, code: str) -> None:
        from models.enums import Role

        kabid, _ = await self.user(Role.KABID, code)
        back = await kabid.wait_for(text_contains="dikembalikan")
        card = await self.press(kabid, back, "Mulai isi data", wait="Indikator 1 dari")
        card = await self.press(kabid, card, "Ringkasan", wait="Ringkasan data")
        idx = [c for c, _ in ANSWERS[code]].index(CORRECTION[0]) + 1
        card = await self.press(kabid, card, f"Ubah {idx}", wait=f"Indikator {idx} dari")
        card = await self.answer(kabid, card, CORRECTION[1], None)
        card = await self.press(kabid, card, "Lanjut", wait="Ringkasan data")
        await self.press(kabid, card, "Kirim ke Kasubag", wait="telah dikirim")

    async def deliver(self, staf) -> None:
        from models.enums import Role

        def has(prefix):
            return lambda m: any(b.get("callback_data", "").startswith(prefix) for b in m.buttons)

        card = await staf.wait_for(predicate=lambda m: has("task:")(m)
                                   and "langkah 11" in (m.text or "").lower())
        contact, _ = await self.user(Role.CONTACT)
        while True:
            q = await self.press(staf, card, prefix="task:")
            opened = await staf.wait_for(after=q, predicate=lambda m: has("dlv:")(m)
                                         or "OPD" in (m.text or ""), timeout=10)
            button = next((b for b in opened.buttons
                           if b.get("callback_data", "").startswith("dlv:")), None)
            if button is None:
                return
            q = await staf.press(opened, data=button["callback_data"])
            await staf.wait_for(after=q)
            if "Bappeda" in button["text"]:  # a registered contact confirms with a button
                confirm = await contact.wait_for(
                    predicate=lambda m: "Konfirmasi terima" in m.button_texts)
                self.at(minutes=2)
                await contact.press(confirm, text="Konfirmasi terima")
                await staf.wait_for(text_contains="Tanda terima dari Bappeda")
            else:  # no contact: the staf sends a photo of the signed receipt
                self.at(minutes=2)
                sent = await staf.send_photo(_png(80, 60), caption="Petugas Tata Usaha")
                await staf.wait_for(after=sent, text_contains="dicatat")
            if await self.cycle_closed():
                return

    async def cycle_closed(self) -> bool:
        from models import Cycle
        from models.enums import CycleStatus

        await self.h.settle()
        async with self.sm() as s:
            return (await s.execute(select(Cycle.status))).scalar_one() == CycleStatus.CLOSED

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

    async def export(self, cycle_id: int) -> dict[str, Path]:
        from models import Document, StoredFile

        docs = self.out / "dokumen"
        docs.mkdir(exist_ok=True)
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
                target.write_bytes(self.services.store.read(stored))
                files[kind] = target
        from bot.archive import build_archive, export_agenda

        archive = self.out / f"arsip-siklus-{cycle_id}.zip"
        agenda = self.out / "buku-agenda.xlsx"
        async with self.sm() as s:
            await build_archive(s, self.services.store, cycle_id, archive)
            await export_agenda(s, agenda, year=YEAR)
        files["arsip"] = archive
        files["agenda"] = agenda
        return files


async def run_demo(out: Path, *, keep_running: bool = False, stream=sys.stdout) -> DemoResult:
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
        await demo.h.settle()
        print("\nLini waktu (waktu simulasi, WIB; waktu kerja = jam kantor, hari libur "
              "dikecualikan):", file=stream)
        for line in await demo.timeline(cycle_id):
            print("  " + line, file=stream)
        files = await demo.export(cycle_id)
        print("\nDokumen yang dihasilkan:", file=stream)
        for kind, path in files.items():
            print(f"  {kind:<9} {path.resolve()}", file=stream)
        seconds = time.perf_counter() - t0
        print(f"\nSelesai dalam {seconds:.1f} detik.", file=stream)
        if keep_running:
            await _keep_running(demo, stream)
    finally:
        await demo.close()
    return DemoResult(out=demo.out, cycle_id=cycle_id, files=files, seconds=seconds)


async def _keep_running(demo: Demo, stream) -> None:
    url = demo.h.emulator.url
    users = sorted(demo.h.users.items())
    print("\nEmulator dan bot tetap berjalan (Ctrl-C untuk berhenti). Contoh:", file=stream)
    uid = users[0][1].user_id
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



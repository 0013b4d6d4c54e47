"""The ``sopbot`` command line (also ``python -m bot``)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Awaitable, Callable

from bot.config import Config, ConfigError, load_config

log = logging.getLogger("sopbot")
NO_RATE_LIMIT_ENV = "SOPBOT_BENCH_NO_RATE_LIMIT"  # "1": sopbot run without the rate limiter


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups,
                                 prefix="penggunaan: " if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """argparse in Indonesian: its own words (usage, help, errors), and every
    subcommand's parser the same (``add_parser`` makes parsers of this class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "argumen"
        self._optionals.title = "opsi"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help="tampilkan bantuan ini lalu keluar")

    def error(self, message: str):
        self.print_usage(sys.stderr)
        replaced = (message.replace("the following arguments are required:",
                                    "argumen berikut wajib diisi:")
                    .replace("unrecognized arguments:", "argumen tidak dikenal:")
                    .replace("invalid choice:", "pilihan tidak dikenal:")
                    .replace("(choose from", "(pilih dari")
                    .replace("invalid int value:", "bukan bilangan bulat:")
                    .replace("expected one argument", "memerlukan satu nilai")
                    .replace("not allowed with argument", "tidak boleh bersama")
                    .replace("argument ", "argumen "))
        self.exit(2, f"{self.prog}: galat: {replaced}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sopbot",
        description="Bot SOP Pengumpulan dan Pengukuran Data Kinerja (SAKIP)",
    )
    p.add_argument("--config", help="berkas konfigurasi (bawaan: config.toml bila ada)")
    p.add_argument("-v", "--verbose", action="store_true", help="log lebih rinci")
    sub = p.add_subparsers(dest="command", required=True, metavar="PERINTAH")

    run = sub.add_parser("run", help="jalankan bot (polling, atau webhook sesuai config)")
    run.add_argument("--no-upgrade", action="store_true",
                     help="jangan menjalankan migrasi basis data saat mulai")
    run.add_argument("--no-receive", action="store_true",
                     help="proses ini tidak menerima update dari Telegram (tanpa polling "
                          "dan webhook); hanya mengolah antrean bersama proses lain "
                          "(PostgreSQL)")

    demo = sub.add_parser("demo", help="peragaan satu siklus penuh tanpa token dan internet")
    demo.add_argument("--out", default="sopbot-demo", help="folder keluaran (bawaan ./sopbot-demo)")
    demo.add_argument("--offices", type=int, default=1, choices=[1, 2, 3], metavar="N",
                      help="jumlah kantor yang menjalankan siklus bersamaan pada satu bot "
                           "(1 sampai 3, bawaan 1; tiap kantor di zona waktunya sendiri)")
    demo.add_argument("--keep-running", action="store_true",
                      help="biarkan emulator dan bot tetap berjalan setelah peragaan")

    emu = sub.add_parser("emulator", help="jalankan emulator Bot API lokal saja, atau "
                                          "mengobrol dengan bot sebagai seorang pengguna")
    emu.add_argument("--port", type=int, default=8081, help="port HTTP (bawaan 8081)")
    emus = emu.add_subparsers(dest="emulator_command", metavar="AKSI")
    ech = emus.add_parser("chat", help="obrolan seorang pengguna, dibaca sebagai baris teks "
                                       "dan tombol bernomor")
    ech.add_argument("user", type=int, metavar="ID_PENGGUNA",
                     help="id Telegram pengguna di emulator (dibuat bila belum ada)")
    ech.add_argument("--url", default=None,
                     help="alamat emulator (bawaan http://127.0.0.1:PORT dari --port)")

    db = sub.add_parser("db", help="basis data")
    dbs = db.add_subparsers(dest="db_command", required=True, metavar="AKSI")
    dbs.add_parser("upgrade", help="terapkan migrasi Alembic sampai yang terbaru")

    setup = sub.add_parser("setup", help="penyiapan kantor dari workbook")
    ss = setup.add_subparsers(dest="setup_command", required=True, metavar="AKSI")
    tpl = ss.add_parser("template", help="tulis workbook isian")
    tpl.add_argument("file", type=Path, metavar="BERKAS.xlsx", help="workbook yang ditulis")
    tpl.add_argument("--year", type=int, default=None, help="tahun target (bawaan: tahun ini)")
    tpl.add_argument("--example", action="store_true", help="isi dengan data contoh")
    imp = ss.add_parser("import", help="impor workbook isian (semua atau tidak sama sekali)")
    imp.add_argument("file", type=Path, metavar="BERKAS.xlsx", help="workbook isian yang diimpor")

    people = sub.add_parser("people", help="pegawai")
    ps = people.add_subparsers(dest="people_command", required=True, metavar="AKSI")
    inv = ps.add_parser("invite", help="buat kode undangan sekali pakai")
    g = inv.add_mutually_exclusive_group(required=True)
    g.add_argument("--nip", help="NIP pegawai yang diundang")
    g.add_argument("--all", action="store_true", help="semua yang belum terdaftar")
    inv.add_argument("--kantor", metavar="KODE_UNIT",
                     help="hanya pegawai kantor ini (bawaan: semua kantor)")
    lst = ps.add_parser("list", help="daftar pegawai dan status pendaftaran")
    lst.add_argument("--kantor", metavar="KODE_UNIT",
                     help="hanya pegawai kantor ini (bawaan: semua kantor)")
    roles = ["kadis", "sekretaris", "kasubag", "kabid", "staf", "admin", "kontak"]
    add = ps.add_parser("add", help="tambah pegawai (admin pertama: --role admin)")
    add.add_argument("--kantor", metavar="KODE_UNIT",
                     help="kode unit kantor (wajib bila ada lebih dari satu kantor)")
    add.add_argument("--name", required=True, help="nama lengkap dengan gelar")
    add.add_argument("--role", required=True, choices=roles, help="peran: %(choices)s")
    add.add_argument("--unit", help="kode bidang (wajib untuk kabid dan staf)")
    add.add_argument("--nip", help="NIP 18 angka")
    add.add_argument("--rank", default="", help="pangkat/golongan")
    add.add_argument("--position", default="", help="jabatan")
    add.add_argument("--agency", help="kunci OPD untuk peran kontak")
    chg = ps.add_parser("change", help="ubah peran, bidang, nama, pangkat atau jabatan")
    chg.add_argument("--kantor", metavar="KODE_UNIT",
                     help="kode unit kantor (wajib bila ada lebih dari satu kantor)")
    _who(chg)
    chg.add_argument("--role", choices=roles, help="peran baru: %(choices)s")
    chg.add_argument("--unit", help="kode bidang baru")
    chg.add_argument("--name", help="nama baru, dengan gelar")
    chg.add_argument("--rank", help="pangkat/golongan baru")
    chg.add_argument("--position", help="jabatan baru")
    chg.add_argument("--successor-nip", help="penerima tugas terbuka yang tidak lagi cocok")
    dea = ps.add_parser("deactivate", help="nonaktifkan pegawai (mutasi/pensiun)")
    dea.add_argument("--kantor", metavar="KODE_UNIT",
                     help="kode unit kantor (wajib bila ada lebih dari satu kantor)")
    _who(dea)
    dea.add_argument("--reason", default="mutasi", choices=["mutasi", "pensiun", "lainnya"],
                     help="alasan: %(choices)s (bawaan: %(default)s)")
    dea.add_argument("--successor-nip",
                     help="penerima tugas terbuka (bawaan: Kabid bidangnya atau atasannya)")
    app = ps.add_parser("appoint", help="tunjuk Plh./Plt. untuk suatu jabatan, atau batalkan")
    app.add_argument("--kantor", metavar="KODE_UNIT",
                     help="kode unit kantor (wajib bila ada lebih dari satu kantor)")
    app.add_argument("--role", choices=["kadis", "sekretaris", "kasubag", "kabid"],
                     help="jabatan yang diisi: %(choices)s")
    app.add_argument("--unit", help="kode bidang (untuk kabid)")
    app.add_argument("--acting-nip", help="NIP pegawai yang ditunjuk")
    app.add_argument("--absent-nip", help="NIP pejabat yang berhalangan (bawaan: pemegang jabatan)")
    app.add_argument("--kind", default="plh", choices=["plh", "plt"],
                     help="Plh. (pelaksana harian) atau Plt. (pelaksana tugas); bawaan plh")
    app.add_argument("--from", dest="date_from", help="tanggal mulai (YYYY-MM-DD), zona waktu kantor")
    app.add_argument("--to", dest="date_to", help="tanggal selesai (YYYY-MM-DD), zona waktu kantor, termasuk")
    app.add_argument("--decree", default="", help="nomor surat perintah")
    app.add_argument("--cancel", type=int, metavar="ID", help="batalkan penunjukan nomor ID")

    off = sub.add_parser("office", help="kantor (OPD) kabupaten: tambah dan daftar")
    offs = off.add_subparsers(dest="office_command", required=True, metavar="AKSI")
    offa = offs.add_parser("add", help="tambah kantor baru (bidang dan pegawainya lewat "
                                       "setup import atau people add --kantor)")
    offa.add_argument("--kode", required=True, metavar="KODE_UNIT", help="kode unit kantor")
    offa.add_argument("--nama", required=True, help="nama kantor, mis. \"Dinas Kesehatan\"")
    offa.add_argument("--zona", choices=["WIB", "WITA", "WIT"], type=str.upper,
                      help="zona waktu kantor (bawaan: [calendar] timezone config.toml)")
    offs.add_parser("list", help="daftar kantor: kode unit, pegawai, siklus berjalan")

    aud = sub.add_parser("audit", help="jejak audit")
    auds = aud.add_subparsers(dest="audit_command", required=True, metavar="AKSI")
    av = auds.add_parser("verify", help="periksa rantai hash jejak audit")
    av.add_argument("--expect-head", metavar="HASH",
                    help="kepala jejak audit dari salinan lama (PDF final, MANIFEST.txt arsip): "
                         "periksa bahwa hash itu masih ada di rantai")
    sub.add_parser("doctor", help="periksa konfigurasi, basis data, migrasi, token, webhook "
                                  "dan sertifikat; katakan apa yang harus diperbaiki")
    bk = sub.add_parser("backup", help="cadangkan basis data SQLite dan berkas tersimpan")
    bk.add_argument("out", type=Path, help="folder tujuan (kosong)")
    agenda = sub.add_parser("agenda", help="buku agenda surat")
    ags = agenda.add_subparsers(dest="agenda_command", required=True, metavar="AKSI")
    agx = ags.add_parser("export", help="tulis buku agenda ke berkas .xlsx")
    agx.add_argument("file", type=Path, metavar="BERKAS.xlsx", help="berkas yang ditulis")
    agx.add_argument("--year", type=int, default=None, help="tahun (bawaan: semua tahun)")
    agx.add_argument("--kantor", default=None, metavar="KODE_UNIT",
                     help="kode unit kantor (wajib bila ada lebih dari satu kantor)")

    arc = sub.add_parser("archive", help="arsip satu siklus sebagai .zip dengan MANIFEST")
    arc.add_argument("cycle_id", type=int, metavar="NOMOR_SIKLUS",
                     help="nomor siklus (lihat /status atau MANIFEST arsip)")
    arc.add_argument("out", type=Path, metavar="ARSIP.zip", help="berkas .zip yang ditulis")

    ver = sub.add_parser("verify", help="periksa keaslian dokumen dari kode verifikasinya, "
                                        "atau berkas PDF yang diterima (sha256 dan tanda tangan)")
    ver.add_argument("code", metavar="KODE|BERKAS.pdf",
                     help="kode verifikasi (dengan atau tanpa tanda hubung) atau berkas PDF")
    return p


def _who(parser: argparse.ArgumentParser) -> None:
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--nip", help="NIP pegawai")
    g.add_argument("--id", type=int, help="nomor pegawai (untuk yang tanpa NIP)")


async def _with_db(cfg: Config, fn: Callable[..., Awaitable[int]], *args) -> int:
    from models.session import make_engine, make_sessionmaker

    engine = make_engine(cfg.database_url, echo=cfg.database.echo)
    try:
        return await fn(make_sessionmaker(engine), *args)
    finally:
        await engine.dispose()


def cmd_db_upgrade(cfg: Config, _args) -> int:
    from models.migrate import upgrade
    from models.session import sqlite_path

    path = sqlite_path(cfg.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    before = asyncio.run(database_revision(cfg))
    upgrade(cfg.database_url)
    from bot.core.storage import FileStore

    FileStore(cfg.storage_dir).make_private()  # files stored by an older version: 0600
    head = migration_head(cfg)
    if before is None:
        print(f"Skema basis data dibuat (versi {head}): {cfg.database_url.split('@')[-1]}")
    elif before == head:
        print(f"Basis data sudah pada versi terbaru ({head}).")
    else:
        print(f"Basis data ditingkatkan dari versi {before} ke {head}.")
    return 0


def cmd_setup_template(cfg: Config, args) -> int:
    from datetime import date

    from bot.devtools.example_data import example_office
    from reports.setup_workbook import write_template

    from bot.config import MEASUREMENT_REPORT

    year = args.year or date.today().year
    from dataclasses import replace

    from bot.config import office_settings
    from reports.setup_workbook import example_settings

    example = replace(example_office(year), settings=example_settings()) \
        if args.example else None
    unit = (example.unit_code if example else cfg.office.unit_code) or "II.08"
    write_template(args.file, year=year, example=example,
                   number_example=cfg.numbering.example(MEASUREMENT_REPORT, unit, year),
                   defaults=office_settings(cfg))
    print(f"Workbook isian ditulis: {args.file}")
    return 0


def cmd_setup_import(cfg: Config, args) -> int:
    from bot.core.clock import SystemClock
    from bot.core.office_setup import import_setup
    from bot.core.uploads import too_large_text
    from reports.setup_workbook import SetupWorkbookError
    from reports.xlsx_limits import XlsxTooLarge

    cmd_db_upgrade_quiet(cfg)

    async def go(sm) -> int:
        async with sm() as session, session.begin():
            result = await import_setup(session, args.file, at=SystemClock().now(), config=cfg)
            if result.errors:
                print(f"Impor dibatalkan, tidak ada yang disimpan. {len(result.errors)} kesalahan:",
                      file=sys.stderr)
                for err in result.errors:
                    print(f"  - {err}", file=sys.stderr)
                return 1
        spec = result.spec
        print(f"Impor berhasil: {len(spec.units)} bidang, {len(spec.people)} pegawai, "
              f"{len(spec.indicators)} indikator.")
        return 0

    try:
        return asyncio.run(_with_db(cfg, go))
    except SetupWorkbookError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except XlsxTooLarge as exc:
        print(too_large_text(exc), file=sys.stderr)
        return 1


def cmd_db_upgrade_quiet(cfg: Config) -> None:
    from models.migrate import upgrade
    from models.session import sqlite_path

    path = sqlite_path(cfg.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(cfg.database_url)


def bot_username(cfg: Config) -> str:
    """[telegram] bot_username, else the username Telegram's getMe gives for the token;
    "" when neither is available."""
    if cfg.telegram.bot_username:
        return cfg.telegram.bot_username.lstrip("@")
    if not cfg.telegram.token:
        return ""
    from telegram import Bot

    async def ask() -> str:
        async with Bot(cfg.telegram.token, base_url=cfg.telegram.api_base_url) as bot:
            return bot.username or ""

    try:
        return asyncio.run(ask())
    except Exception as exc:  # no network, wrong token: the caller says what to configure
        logging.getLogger(__name__).warning("getMe failed: %s", type(exc).__name__)
        return ""


def cmd_people_invite(cfg: Config, args) -> int:
    from sqlalchemy import select

    from bot.core.clock import SystemClock
    from bot.core.onboarding import create_invitation, deep_link
    from models import Person
    from models.enums import Role

    username = bot_username(cfg)
    if not username:
        print("Username bot belum diketahui, tautan undangan tidak dapat dibuat: isi "
              "[telegram] bot_username (tanpa @) di config.toml, atau [telegram] token / "
              "SOPBOT_TELEGRAM_TOKEN agar diambil dari Telegram (getMe).", file=sys.stderr)
        return 1

    async def go(sm) -> int:
        from bot.core.archive import office_by_code
        from models import Office

        now = SystemClock().now()
        async with sm() as session, session.begin():
            stmt = select(Person).where(Person.active.is_(True)).order_by(Person.office_id,
                                                                          Person.id)
            if args.kantor:  # one office's people (every office's without --kantor)
                try:
                    office = await office_by_code(session, args.kantor)
                except LookupError as exc:
                    print(exc, file=sys.stderr)
                    return 2
                stmt = stmt.where(Person.office_id == office.id)
            if args.nip:
                stmt = stmt.where(Person.nip == args.nip)
            else:
                stmt = stmt.where(Person.telegram_user_id.is_(None), Person.role != Role.ADMIN)
            people = (await session.execute(stmt)).scalars().all()
            if not people:
                print("Tidak ada pegawai yang cocok." if args.nip else
                      "Semua pegawai aktif sudah terdaftar.", file=sys.stderr)
                return 1
            offices = {o.id: o for o in (await session.execute(select(Office))).scalars()}
            several = len(offices) > 1  # then each line says whose invitation it is
            for person in people:
                inv = await create_invitation(session, person, now=now,
                                              valid_days=cfg.sop.invitation_valid_days)
                office = offices.get(person.office_id)
                where = (f"{office.unit_code} {office.name}\t" if several and office else "")
                print(f"{where}{person.name}\t{person.nip or '-'}\t{person.role.value}\t"
                      f"{inv.code}\t{deep_link(username, inv.code)}")
        return 0

    return asyncio.run(_with_db(cfg, go))


def cmd_people_list(cfg: Config, args) -> int:
    from sqlalchemy import select

    from bot.core.archive import office_by_code
    from models import Person, Unit

    async def go(sm) -> int:
        async with sm() as session:
            stmt = (select(Person, Unit).outerjoin(Unit, Unit.id == Person.unit_id)
                    .order_by(Person.office_id, Unit.sort_order, Person.role, Person.name))
            try:  # one office's people (all offices' with several and no --kantor)
                office = await office_by_code(session, args.kantor)
            except LookupError as exc:
                if args.kantor:
                    print(exc, file=sys.stderr)
                    return 2
                office = None
            if office is not None:
                stmt = stmt.where(Person.office_id == office.id)
            rows = (await session.execute(stmt)).all()
        print(f"{'Nama':40} {'NIP':18} {'Peran':10} {'Bidang':32} Terdaftar")
        for person, unit in rows:
            status = "ya" if person.telegram_user_id else "belum"
            if not person.active:
                status = "nonaktif"
            print(f"{person.name[:40]:40} {(person.nip or '-'):18} {person.role.value:10} "
                  f"{(unit.name if unit else '-')[:32]:32} {status}")
        registered = sum(1 for p, _ in rows if p.telegram_user_id)
        print(f"\n{registered} dari {len(rows)} pegawai sudah terdaftar di bot.")
        return 0

    return asyncio.run(_with_db(cfg, go))


def _admin(cfg: Config, fn, args=None) -> int:
    """Run ``fn(adm)`` in one transaction as the operator, for the office of
    ``--kantor`` (needed when there are several); a refusal prints why."""
    import html
    import re

    from bot.core.administration import Administration
    from bot.core.services import build_services
    from bot.core.workflow import WorkflowError

    services = build_services(cfg)

    async def go(sm) -> int:
        try:
            async with sm() as session, session.begin():
                from bot.core.archive import office_by_code

                office = await office_by_code(session, getattr(args, "kantor", None))
                adm = Administration(session, services, office.id if office else None)
                await adm.wf.ready()
                lines = await fn(adm)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 2
        except WorkflowError as exc:
            print(html.unescape(re.sub(r"<[^>]+>", "", exc.message)), file=sys.stderr)
            return 1
        for line in lines:
            print(html.unescape(re.sub(r"<[^>]+>", "", line)))
        return 0

    return asyncio.run(_with_db(cfg, go))


async def _target(adm, args):
    return await adm.person_by_nip(args.nip) if args.nip else await adm.person(args.id)


def cmd_office_add(cfg: Config, args) -> int:
    from bot.core.clock import SystemClock
    from bot.core.regency import OfficeError, add_office, zone_of

    async def go(sm) -> int:
        try:
            async with sm() as session, session.begin():
                office = await add_office(session, cfg, unit_code=args.kode, name=args.nama,
                                          zone=zone_of(args.zona), at=SystemClock().now(),
                                          actor="operator (CLI)")
        except OfficeError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"Kantor ditambahkan: {office.name} (kode unit {office.unit_code}), nomor "
              f"{office.id}. Isi bidang dan pegawainya: sopbot setup import BERKAS.xlsx "
              f"(Kode Unit {office.unit_code}), atau sopbot people add --kantor "
              f"{office.unit_code} ... (admin kantor: --role admin).")
        return 0

    return asyncio.run(_with_db(cfg, go))


def cmd_office_list(cfg: Config, args) -> int:
    from bot.core.regency import office_rows

    async def go(sm) -> int:
        async with sm() as session:
            rows = await office_rows(session, cfg)
        print(f"{'Kode':10} {'Nama':40} {'Zona':6} {'Pegawai':>8} {'Terdaftar':>10} "
              f"{'Siklus berjalan':>16}")
        for r in rows:
            print(f"{r.office.unit_code[:10]:10} {r.office.name[:40]:40} {r.zone[:6]:6} "
                  f"{r.people:>8} {r.registered:>10} {r.open_cycles:>16}")
        print(f"\n{len(rows)} kantor.")
        return 0

    return asyncio.run(_with_db(cfg, go))


def cmd_people_add(cfg: Config, args) -> int:
    from models.enums import Role

    async def fn(adm):
        p = await adm.add_person(None, name=args.name, role=Role(args.role),
                                 unit_code=args.unit, nip=args.nip, rank=args.rank,
                                 position=args.position, agency_key=args.agency)
        return [f"Pegawai ditambahkan: {p.name} ({p.role.value}), nomor {p.id}. "
                f"Buat kode undangan: sopbot people invite "
                + (f"--nip {p.nip}" if p.nip else "--all")]

    return _admin(cfg, fn, args)


def cmd_people_change(cfg: Config, args) -> int:
    from models.enums import Role

    async def fn(adm):
        person = await _target(adm, args)
        successor = await adm.person_by_nip(args.successor_nip) if args.successor_nip else None
        p, moved = await adm.change_person(
            None, person.id, role=Role(args.role) if args.role else None, unit_code=args.unit,
            name=args.name, rank=args.rank, position=args.position,
            successor_id=successor.id if successor else None)
        return [f"Data {p.name} diubah ({p.role.value}); {len(moved)} tugas terbuka dialihkan."]

    return _admin(cfg, fn, args)


def cmd_people_deactivate(cfg: Config, args) -> int:
    async def fn(adm):
        person = await _target(adm, args)
        successor = await adm.person_by_nip(args.successor_nip) if args.successor_nip else None
        r = await adm.deactivate(None, person.id, reason=args.reason,
                                 successor_id=successor.id if successor else None)
        moved = (f"; {len(r.runs)} tugas dan {len(r.items)} indikator dialihkan kepada "
                 f"{r.successor.name}") if (r.runs or r.items) else ""
        return [f"{r.person.name} dinonaktifkan ({args.reason}){moved}."]

    return _admin(cfg, fn, args)


def cmd_people_appoint(cfg: Config, args) -> int:
    from bot.core.administration import parse_range, range_text
    from models import ActingKind
    from models.enums import Role

    async def fn(adm):
        if args.cancel:
            appt = await adm.cancel_appointment(None, args.cancel)
            return [f"Penunjukan {appt.id} dibatalkan."]
        if not (args.role and args.acting_nip and args.date_from):
            from bot.core.workflow import InvalidInput

            raise InvalidInput("Isi --role, --acting-nip dan --from (dan --to), "
                               "atau --cancel ID.")
        unit_id = (await adm.unit_by_code(args.unit)).id if args.unit else None
        acting = await adm.person_by_nip(args.acting_nip)
        absent = await adm.person_by_nip(args.absent_nip) if args.absent_nip else None
        starts, ends = parse_range(f"{args.date_from} {args.date_to or args.date_from}")
        appt = await adm.appoint(None, role=Role(args.role), unit_id=unit_id,
                                 acting_id=acting.id, absent_id=absent.id if absent else None,
                                 kind=ActingKind(args.kind), starts_at=starts, ends_at=ends,
                                 decree=args.decree)
        title = await adm.slot_title(appt.role, appt.unit_id)
        return [f"Penunjukan {appt.id}: {appt.kind.label} {title} {acting.name}, "
                f"{range_text(appt.starts_at, appt.ends_at)}."]

    return _admin(cfg, fn, args)


def cmd_audit_verify(cfg: Config, args) -> int:
    from bot.core.audit import HASH_RE, KEY_ENV, audit_key, verify

    expect = getattr(args, "expect_head", None)
    if expect is not None and not HASH_RE.match(expect.strip().lower()):
        print("HASH untuk --expect-head harus 64 karakter heksadesimal (0-9, a-f), seperti "
              "tercetak pada PDF final atau MANIFEST.txt arsip.", file=sys.stderr)
        return 2

    async def go(sm) -> int:
        async with sm() as session:
            result = await verify(session, key=audit_key(), expect_head=expect)
        if not result.ok:
            print(f"RUSAK: {len(result.problems)} masalah pada {result.rows} baris:",
                  file=sys.stderr)
            for problem in result.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        for note in result.notes:
            print(f"Catatan: {note}")
        if expect is not None:
            print(f"Kepala {expect.strip().lower()} ada di rantai (baris {result.expected_at}): "
                  "tidak ada yang ditulis ulang sebelumnya.")
        if result.unchecked:
            print(f"BELUM PASTI: {result.rows} baris tersambung, tetapi hash {result.unchecked} "
                  f"baris berkunci HMAC tidak dapat diperiksa tanpa {KEY_ENV}.")
            return 3
        mode = " (HMAC-SHA256)" if result.mode != "sha256" else ""
        print(f"OK: {result.rows} baris jejak audit utuh{mode}. Kepala: {result.head or '-'}")
        return 0

    return asyncio.run(_with_db(cfg, go))


def audit_key_refusal(cfg: Config) -> str | None:
    """Why `sopbot run` must not start: a keyed audit trail and no (or another) key."""
    from bot.core.audit import audit_key, key_problem
    from models import AuditHead

    async def go(sm) -> str | None:
        async with sm() as session:
            return key_problem(await session.get(AuditHead, 1), audit_key())

    return asyncio.run(_with_db(cfg, go))


def cmd_agenda_export(cfg: Config, args) -> int:
    from bot.core.archive import export_agenda

    cmd_db_upgrade_quiet(cfg)

    async def go(sm) -> int:
        async with sm() as session:
            try:
                count = await export_agenda(session, args.file, year=args.year,
                                            office=args.kantor)
            except LookupError as exc:
                print(exc)
                return 2
        print(f"Buku agenda ditulis: {args.file} ({count} surat)")
        return 0

    return asyncio.run(_with_db(cfg, go))


def cmd_archive(cfg: Config, args) -> int:
    from bot.core.archive import build_archive
    from bot.core.services import build_services

    svc = build_services(cfg)
    store = svc.store
    cmd_db_upgrade_quiet(cfg)

    async def go(sm) -> int:
        async with sm() as session:
            try:
                result = await build_archive(session, store, args.cycle_id, args.out,
                                             services=svc)
            except LookupError as exc:
                print(str(exc), file=sys.stderr)
                return 1
        size = sum(e.size for e in result.entries)
        print(f"Arsip ditulis: {result.path} ({len(result.entries)} berkas, {size} byte)")
        print(f"SHA-256 MANIFEST.txt: {result.manifest_sha256}")
        return 0

    return asyncio.run(_with_db(cfg, go))


def _signature_lines(check) -> tuple[bool, list[str]]:
    """(valid or absent-and-honest, lines) for the PAdES check of a PDF."""
    if check is None or not check.present:
        return False, ["Tanda tangan elektronik: TIDAK ADA (PDF tidak memuat tanda tangan "
                       "elektronik)"]
    lines = [f"Sertifikat    : {check.signer}",
             f"Sidik jari    : SHA-256 {check.fingerprint}"]
    if check.valid:
        return True, ["Tanda tangan elektronik: SAH (PAdES; isi tidak berubah sejak "
                      "ditandatangani; sertifikat berakar pada [signing] trust_roots)", *lines]
    if check.intact and check.whole_file:
        return False, ["Tanda tangan elektronik: isi utuh, tetapi sertifikat TIDAK berakar pada "
                       "sertifikat tepercaya ([signing] trust_roots)", *lines]
    return False, [f"Tanda tangan elektronik: TIDAK SAH ({check.detail or 'isi berubah'})",
                   *lines]


def cmd_verify_file(cfg: Config, path: Path) -> int:
    """`sopbot verify BERKAS.pdf`: the file's sha256 against the register and its PAdES
    signature against the configured trust roots; exit 0 only when both hold."""
    import hashlib

    from bot.core.documents import find_by_pdf_sha256
    from bot.core.signing import check_pdf, trust_roots

    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"Berkas {path} tidak dapat dibaca: {exc.strerror}", file=sys.stderr)
        return 2
    digest = hashlib.sha256(data).hexdigest()
    cmd_db_upgrade_quiet(cfg)

    async def go(sm) -> int:
        async with sm() as session:
            found = await find_by_pdf_sha256(session, digest)
        check = await check_pdf(data, trust_roots(cfg))
        print(f"Berkas        : {path}")
        print(f"SHA-256       : {digest}")
        registered = found is not None and found["final"]
        if found is None:
            print("Register      : TIDAK TERDAFTAR - tidak ada dokumen terbitan bot ini dengan "
                  "sha256 ini (berkas diubah, atau bukan dari bot ini)")
        elif found["final"]:
            print(f"Register      : TERDAFTAR - versi final bernomor v{found['version']}, nomor "
                  f"surat {found['letter_number'] or '-'}, kode {found['code']}")
            print(f"Versi disetujui: v{found['approved_version']} (SHA-256 PDF "
                  f"{found['approved_sha256']})")
        else:
            print(f"Register      : versi v{found['version']} (draf/versi yang diperiksa, "
                  "bukan dokumen final bernomor)")
        ok, lines = _signature_lines(check)
        for line in lines:
            print(line)
        if registered and (ok or (not check.present and not found["signature"])):
            print("HASIL: ASLI" + ("" if ok else " (tanpa tanda tangan elektronik)"))
            return 0
        print("HASIL: TIDAK TERBUKTI ASLI", file=sys.stderr)
        return 1

    return asyncio.run(_with_db(cfg, go))


def cmd_verify(cfg: Config, args) -> int:
    from bot.core.archive import wib_text
    from bot.core.documents import verify_code

    target = Path(args.code)
    if target.suffix.lower() == ".pdf" or target.is_file():
        return cmd_verify_file(cfg, target)
    cmd_db_upgrade_quiet(cfg)

    async def go(sm) -> int:
        from bot.core.signing import trust_roots
        from bot.core.storage import FileStore

        store = FileStore(cfg.storage_dir, cfg.storage.max_evidence_mb * 1024 * 1024)
        async with sm() as session:
            found = await verify_code(session, args.code, store=store,
                                      trust_roots=trust_roots(cfg))
        if found is None:
            print(f"TIDAK DITEMUKAN: kode {args.code.strip().upper()} tidak diterbitkan "
                  "oleh bot ini.", file=sys.stderr)
            return 1
        print(f"ASLI: kode {found['code']}")
        print(f"Nomor surat   : {found['letter_number'] or '-'}")
        print(f"Tanggal surat : {found['letter_date'] or '-'}")
        signer = found["signer"] + (f" selaku {found['capacity']}" if found["capacity"] else "")
        print(f"Penanda tangan: {signer}")
        for ini in found["initials"]:
            print(f"Paraf         : {ini['name']} selaku {ini['capacity']} "
                  f"({wib_text(ini['at'])})")
        print(f"Waktu tanda tangan: {wib_text(found['signed_at']) or '-'}")
        print(f"Versi disetujui: v{found['approved_version'] or '-'} (SHA-256 PDF "
              f"{found['approved_sha256'] or '-'})")
        print(f"Versi final   : v{found['version']} (SHA-256 PDF {found['sha256']})")
        for line in _signature_lines(found["signature"])[1]:
            print(line)
        return 0

    return asyncio.run(_with_db(cfg, go))


def _local_api(base_url: str | None) -> bool:
    """Whether the Bot API is a server on this machine (the emulator), not Telegram."""
    from urllib.parse import urlsplit

    host = urlsplit(base_url or "").hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def cmd_run(cfg: Config, args) -> int:
    from bot.telegram.app import build_application, settle_memory
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker

    if not cfg.telegram.token:
        print("Token Telegram belum diisi: isi [telegram] token di config.toml atau "
              "SOPBOT_TELEGRAM_TOKEN. Untuk mencoba tanpa Telegram: sopbot demo.",
              file=sys.stderr)
        return 2
    if not args.no_upgrade:
        cmd_db_upgrade_quiet(cfg)
    refusal = audit_key_refusal(cfg)
    if refusal is not None:
        print(f"Bot tidak dijalankan: {refusal}", file=sys.stderr)
        return 2
    services = build_services(cfg)
    engine = make_engine(cfg.database_url, echo=cfg.database.echo)
    # a benchmark's knob (bench/bench_updates.py --mode saturation --bot-process: the
    # emulator does not enforce Telegram's limits), honoured only against a Bot API on
    # this machine: Telegram bans a bot that ignores them
    unlimited = os.environ.get(NO_RATE_LIMIT_ENV) == "1" \
        and _local_api(cfg.telegram.api_base_url)
    if unlimited:
        log.warning("%s=1: batas kecepatan Telegram TIDAK dijaga (hanya untuk benchmark)",
                    NO_RATE_LIMIT_ENV)
    app = build_application(services, make_sessionmaker(engine), token=cfg.telegram.token,
                            base_url=cfg.telegram.api_base_url,
                            base_file_url=cfg.telegram.file_base_url, rate_limit=not unlimited)
    log.info("bot berjalan (%s) dengan basis data %s", cfg.telegram.mode,
             cfg.database_url.split("@")[-1])
    settle_memory()
    try:  # updates go through the inbox (bot/telegram/intake.py): polling, or a webhook with a secret
        asyncio.run(_run_then_dispose(app, cfg, engine,
                                       receive=not args.no_receive))
    except KeyboardInterrupt:
        pass
    return 0


async def _run_then_dispose(app, cfg: Config, engine, *, receive: bool = True) -> None:
    from bot.telegram.intake import run_bot

    monitor = None
    if cfg.monitoring.port:
        from bot.telegram.monitoring import MonitoringServer
        from models.session import make_sessionmaker

        monitor = MonitoringServer(make_sessionmaker(engine), listen=cfg.monitoring.listen,
                                   port=cfg.monitoring.port,
                                   max_lag_seconds=cfg.monitoring.max_lag_seconds)
        await monitor.start()
    try:
        await run_bot(app, cfg.telegram, receive=receive)
    finally:
        if monitor is not None:
            await monitor.stop()
        await engine.dispose()


def cmd_demo(cfg: Config, args) -> int:
    from bot.devtools.demo import run_demo

    logging.getLogger().setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    try:
        if args.offices > 1:
            from bot.devtools.demo import run_demo_offices

            asyncio.run(run_demo_offices(Path(args.out), args.offices,
                                         keep_running=args.keep_running))
        else:
            asyncio.run(run_demo(Path(args.out), keep_running=args.keep_running))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_emulator(cfg: Config, args) -> int:
    from bot.devtools.emulator import main as emulator_main

    return emulator_main(["--port", str(args.port)]) or 0


def cmd_emulator_chat(cfg: Config, args) -> int:
    from bot.devtools.chat import main as chat_main

    return chat_main(args.url or f"http://127.0.0.1:{args.port}", args.user)


def cmd_backup(cfg: Config, args) -> int:
    from bot.core.backup import BackupError, backup

    try:
        result = backup(cfg, args.out)
    except BackupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"Cadangan selesai: {result.database} ({result.pages} halaman), "
          f"{result.files} berkas di {result.files_dir}")
    return 0


def migration_head(cfg: Config) -> str:
    from alembic.script import ScriptDirectory

    from models.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config(cfg.database_url)).get_current_head()


async def database_revision(cfg: Config) -> str | None:
    """The migration the database is at (None: no schema yet); raises when the database
    cannot be reached."""
    from sqlalchemy import text as sql_text

    from models.session import make_engine

    engine = make_engine(cfg.database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sql_text("SELECT 1"))

            def revision(sync_conn):
                from alembic.runtime.migration import MigrationContext

                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(revision)
    finally:
        await engine.dispose()


def doctor_checks(cfg: Config, env=None) -> list[tuple[str, bool | None, str]]:
    """What ``sopbot doctor`` checks, in order: (what, ok, detail). ``ok`` None: only a
    remark (nothing to fix). Each detail says, in Indonesian, what to fix."""
    import os as _os

    env = _os.environ if env is None else env
    found: list[tuple[str, bool | None, str]] = [("Konfigurasi", True, "terbaca dan sah")]
    head = current = None
    from models.session import sqlite_path

    db_file = sqlite_path(cfg.database_url)
    if db_file is not None and not db_file.exists():
        found.append(("Basis data", False, f"berkas {db_file} belum ada: jalankan "
                                           "'sopbot db upgrade'"))
    else:
        try:
            head = migration_head(cfg)
            current = asyncio.run(asyncio.wait_for(database_revision(cfg), 15))
            found.append(("Basis data", True, cfg.database_url.split("@")[-1]))
        except Exception as exc:
            found.append(("Basis data", False,
                          f"tidak dapat dihubungi ({type(exc).__name__}); periksa [database] "
                          "url atau SOPBOT_DATABASE_URL, dan bahwa servernya berjalan"))
    if head is not None and any(w == "Basis data" and ok for w, ok, _ in found):
        if current == head:
            found.append(("Migrasi", True, f"versi terbaru ({head})"))
        elif current is None:
            found.append(("Migrasi", False, "basis data masih kosong: jalankan "
                                            "'sopbot db upgrade'"))
        else:
            found.append(("Migrasi", False, f"versi {current}, terbaru {head}: jalankan "
                                            "'sopbot db upgrade'"))
    token = cfg.telegram.token
    if not token:
        found.append(("Token Telegram", False, "kosong: isi [telegram] token atau "
                                               "SOPBOT_TELEGRAM_TOKEN (dari @BotFather)"))
    else:
        from telegram import Bot
        from telegram.error import InvalidToken, TelegramError

        async def me():
            async with Bot(token, base_url=cfg.telegram.api_base_url) as bot:
                info = await bot.get_webhook_info()
                return bot.username, info.url

        try:
            username, hook = asyncio.run(asyncio.wait_for(me(), 20))
            found.append(("Token Telegram", True, f"diterima: @{username}"))
            if cfg.telegram.mode == "webhook":
                ok = hook == cfg.telegram.webhook_url
                found.append(("Webhook", ok, f"terdaftar {hook or '(belum ada)'}" + (
                    "" if ok else f"; 'sopbot run' mendaftarkan {cfg.telegram.webhook_url}")))
        except InvalidToken:
            found.append(("Token Telegram", False, "ditolak Telegram: minta token baru ke "
                                                   "@BotFather dan isi [telegram] token"))
        except (TelegramError, OSError, TimeoutError) as exc:
            found.append(("Token Telegram", False,
                          f"Bot API tidak terjangkau ({type(exc).__name__}); periksa jaringan "
                          f"dan [telegram] api_base_url ({cfg.telegram.api_base_url})"))
    if cfg.telegram.mode == "webhook" and not cfg.telegram.webhook_url.startswith("https://"):
        found.append(("Webhook", False, "[telegram] webhook_url harus alamat https://"))
    from bot.core.signing import ENV_PKCS12, SigningError, signer_from_config

    try:
        signer = signer_from_config(cfg, env)
    except (ConfigError, SigningError) as exc:
        found.append(("Sertifikat", False, str(exc)))
    else:
        if signer is None:
            found.append(("Sertifikat", None, "tidak ada: PDF final diberi nomor tetapi tidak "
                                              "ditandatangani secara elektronik (isi "
                                              f"[signing] pkcs12_path atau {ENV_PKCS12})"))
        else:
            found.append(("Sertifikat", True, f"{signer.description}, {signer.level}"))
    store = cfg.storage_dir
    existing = next(p for p in (store, *store.parents) if p.exists())
    if _os.access(existing, _os.W_OK | _os.X_OK):
        found.append(("Folder berkas", True, str(store) + (
            "" if existing == store else " (dibuat saat pertama dipakai)")))
    else:
        found.append(("Folder berkas", False, f"{existing} tidak dapat ditulisi; periksa "
                                              "[storage] path dan hak aksesnya"))
    return found


def cmd_doctor(cfg: Config, _args) -> int:
    """`sopbot doctor`: what is ready and what to fix, one line each; exit 1 when
    something must be fixed."""
    checks = doctor_checks(cfg)
    for what, ok, detail in checks:
        mark = "OK   " if ok else ("INFO " if ok is None else "GAGAL")
        print(f"{mark} {what}: {detail}")
    bad = [w for w, ok, _ in checks if ok is False]
    print("Siap dijalankan." if not bad else f"Perbaiki dahulu: {', '.join(bad)}.")
    return 1 if bad else 0


COMMANDS: dict[tuple[str, ...], Callable[[Config, argparse.Namespace], int]] = {
    ("doctor",): cmd_doctor,
    ("run",): cmd_run,
    ("demo",): cmd_demo,
    ("emulator",): cmd_emulator,
    ("emulator", "chat"): cmd_emulator_chat,
    ("db", "upgrade"): cmd_db_upgrade,
    ("setup", "template"): cmd_setup_template,
    ("setup", "import"): cmd_setup_import,
    ("office", "add"): cmd_office_add,
    ("office", "list"): cmd_office_list,
    ("people", "invite"): cmd_people_invite,
    ("people", "list"): cmd_people_list,
    ("people", "add"): cmd_people_add,
    ("people", "change"): cmd_people_change,
    ("people", "deactivate"): cmd_people_deactivate,
    ("people", "appoint"): cmd_people_appoint,
    ("audit", "verify"): cmd_audit_verify,
    ("agenda", "export"): cmd_agenda_export,
    ("archive",): cmd_archive,
    ("verify",): cmd_verify,
    ("backup",): cmd_backup,
}


def _key(args: argparse.Namespace) -> tuple[str, ...]:
    sub = getattr(args, f"{args.command}_command", None)
    return (args.command, sub) if sub else (args.command,)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and, when
    there is one, the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import datetime, timezone

        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc)
                 .isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(cfg: Config, *, verbose: bool = False) -> None:
    """``[logging] format`` and ``level`` (``--verbose``: DEBUG) for this process."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter() if cfg.logging.format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else cfg.logging.level.upper())
    for noisy in ("httpx", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # everything this process writes (database, stored files, backups, archives,
    # exports) is for the office only: files 0600, folders 0700
    os.umask(0o077)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"Konfigurasi salah: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg, verbose=args.verbose)
    handler = COMMANDS.get(_key(args))
    if handler is None:
        print(f"Perintah '{' '.join(_key(args))}' belum tersedia.", file=sys.stderr)
        return 2
    try:
        return handler(cfg, args)
    except ConfigError as exc:  # found when a command builds its services (the certificate)
        print(f"Konfigurasi salah: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

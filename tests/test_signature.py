"""A signature an auditor can verify: the demo's final PDF carries a PAdES signature that
validates against the demo CA (and breaks when one byte changes), its QR is a standard QR
holding the bot's deep link, /cek answers for any spelling of the code, and every sha256
in the archive names a file in it."""
from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from bot.core.signing import (
    Pkcs12Signer, SignatureBox, SigningError, check_pdf, make_demo_certificates,
)
from models import Approval, Document, StoredFile
from models.enums import ApprovalAction

FINAL = "dokumen/Pengukuran-Kinerja-2024-TW3-final.pdf"
WIB = ZoneInfo("Asia/Jakarta")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo cycle (the main job), played once for this module."""
    from bot.devtools.demo import run_demo

    out = tmp_path_factory.mktemp("sig") / "demo"
    result = asyncio.run(run_demo(out, stream=io.StringIO()))
    return result


def ca_of(demo) -> Path:
    return demo.out / "sertifikat-contoh" / "ca-contoh.pem"


def appearance_text(reader: PdfReader) -> str:
    """The text drawn by the signature field's appearance (PDF string literals of the
    content streams, octal escapes decoded), one string per line."""
    widget = next(a.get_object() for p in reader.pages for a in p.get("/Annots", [])
                  if a.get_object().get("/FT") == "/Sig" or a.get_object().get("/T"))
    ap = widget["/AP"]["/N"].get_object()
    streams = [ap.get_data()] + [xo.get_object().get_data()
                                 for xo in ap["/Resources"].get("/XObject", {}).values()]
    out = []
    for data in streams:
        for raw in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", data):
            text = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw)
            text = re.sub(rb"\\(.)", rb"\1", text)
            out.append(text.decode("latin-1"))
    return "\n".join(out)


def flip_one_byte(data: bytes) -> bytes:
    """One byte of the page content changed (inside the signed range, outside the
    signature value itself)."""
    changed = bytearray(data)
    at = data.index(b"stream", len(data) // 4) + 20
    changed[at] ^= 0x01
    return bytes(changed)


# ------------------------------------------------------------------ the signature
def test_demo_final_pdf_validates_against_the_demo_ca(demo):
    pdf = (demo.out / FINAL).read_bytes()
    check = asyncio.run(check_pdf(pdf, [ca_of(demo)]))
    assert check.present and check.intact and check.trusted and check.whole_file
    assert check.valid
    assert "DATA CONTOH" in check.signer
    # pyHanko's validator straight, as an auditor would call it
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    _, _, der = pem.unarmor(ca_of(demo).read_bytes())
    vc = ValidationContext(trust_roots=[x509.Certificate.load(der)], allow_fetching=False)
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(sig, vc)
    assert status.bottom_line and status.intact and status.trusted
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    if shutil.which("pdfsig"):
        out = subprocess.run(["pdfsig", str(demo.out / FINAL)], capture_output=True, text=True)
        assert "Signature is Valid." in out.stdout and "Total document signed" in out.stdout


def test_one_changed_byte_breaks_the_signature(demo, tmp_path):
    pdf = flip_one_byte((demo.out / FINAL).read_bytes())
    check = asyncio.run(check_pdf(pdf, [ca_of(demo)]))
    assert check.present and not check.intact and not check.valid
    if shutil.which("pdfsig"):
        path = tmp_path / "diubah.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
        assert "Signature is Valid." not in out.stdout


def test_a_pdf_without_the_ca_is_intact_but_not_trusted(demo):
    check = asyncio.run(check_pdf((demo.out / FINAL).read_bytes(), []))
    assert check.intact and not check.trusted and not check.valid


def test_the_visible_signature_names_the_signer_capacity_and_time_in_wib(demo):
    reader = PdfReader(demo.out / FINAL)
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert appearance_text(reader).splitlines() == [
        "Ditandatangani secara elektronik oleh", "Drs. Contoh Kepala Dinas, M.M.",
        "Kepala Dinas", "14 Oktober 2024 09.15 WIB"]  # the approval, in the office's zone
    assert "TIDAK memuat tanda tangan" not in text


def test_plh_signs_in_own_name_and_capacity_and_bad_passphrase_is_a_clear_error(tmp_path):
    from reports.document_data import DocumentData, Signatory
    from reports.pdf import build_pdf_with_signature_box

    certs = make_demo_certificates(tmp_path / "c", "Dinas <Uji> & \"Coba\"")
    name = "Ir. Siti Nur'aini <Plh> & Rekan, M.Si."
    data = DocumentData(
        office_name="Dinas Uji", regency="Kabupaten Contoh", title="PENGUKURAN KINERJA",
        period_label="Triwulan III Tahun 2024", year=2024, rows=(),
        signatory=Signatory(place="Liwa", title="Kepala Dinas Uji", name=name,
                            rank="Pembina", nip="197001012000031001", acting="Plh."),
        letter_number="050/7/KPTS/II.08/2024", verification_code="ABCD-EFGH",
        verification_url_or_text="https://t.me/sopbot_demo_bot?start=cek_ABCD-EFGH",
        e_signed=True)
    path, box = build_pdf_with_signature_box(data, tmp_path / "a.pdf")
    signer = Pkcs12Signer(certs.pkcs12, certs.passphrase)
    signed = asyncio.run(signer.sign(
        path.read_bytes(), signer_name=name, capacity="Plh. Kepala Dinas", reason="uji",
        location="Liwa", when=datetime(2024, 10, 14, 9, 15, tzinfo=WIB),
        box=SignatureBox(*box)))
    shown = appearance_text(PdfReader(io.BytesIO(signed))).splitlines()
    assert shown == ["Ditandatangani secara elektronik oleh", name, "Plh. Kepala Dinas",
                     "14 Oktober 2024 09.15 WIB"]
    assert asyncio.run(check_pdf(signed, [certs.ca_cert])).valid
    with pytest.raises(SigningError, match="frasa sandi salah"):
        Pkcs12Signer(certs.pkcs12, "bukan-sandinya")


def test_without_a_certificate_the_pdf_says_it_carries_no_electronic_signature(tmp_path):
    from reports.document_data import DocumentData, Signatory
    from reports.pdf import build_pdf_with_signature_box

    data = DocumentData(
        office_name="Dinas Uji", regency="Kabupaten Contoh", title="PENGUKURAN KINERJA",
        period_label="Triwulan III Tahun 2024", year=2024, rows=(),
        signatory=Signatory(place="Liwa", title="Kepala Dinas Uji", name="Kadis",
                            rank="Pembina", nip="1"),
        verification_code="ABCD-EFGH", e_signed=False)
    path, box = build_pdf_with_signature_box(data, tmp_path / "a.pdf")
    text = " ".join((p.extract_text() or "") for p in PdfReader(path).pages)
    assert box is None
    assert "TIDAK memuat tanda tangan elektronik" in " ".join(text.split())
    assert not asyncio.run(check_pdf(path.read_bytes())).present


# ------------------------------------------------------------------ the QR
def test_qr_on_the_final_pdf_is_a_standard_qr_holding_the_deep_link(demo):
    import zxingcpp

    reader = PdfReader(demo.out / FINAL)
    code = re.search(r"Kode verifikasi: ([A-Z2-9]{4}-[A-Z2-9]{4})",
                     " ".join(p.extract_text() or "" for p in reader.pages)).group(1)
    found = []
    for page in reader.pages:
        for image in page.images:
            found += zxingcpp.read_barcodes(image.image.convert("L"))
    assert len(found) == 1
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode  # not MicroQRCode
    assert found[0].text == f"https://t.me/sopbot_demo_bot?start=cek_{code}"


# ------------------------------------------------------------------ one documented hash
def test_every_sha256_in_the_archive_manifest_and_approvals_matches_a_file_in_it(demo):
    with zipfile.ZipFile(demo.files["arsip"]) as z:
        files = {n: z.read(n) for n in z.namelist()}
    digests = {hashlib.sha256(d).hexdigest(): n for n, d in files.items()}
    manifest = files["MANIFEST.txt"].decode()
    audit_hashes = {row["hash"] for row in map(__import__("json").loads,
                                               files["audit.jsonl"].decode().splitlines())}
    for line in manifest.splitlines():
        for h in re.findall(r"\b[0-9a-f]{64}\b", line):
            if line.startswith("# Kepala jejak audit"):
                assert h in audit_hashes, line  # the audit trail's head row
            else:
                assert h in digests, line
    assert "Versi final bernomor" in manifest and "dibuat dari versi yang ditandatangani" in manifest
    rows = list(csv.DictReader(io.StringIO(files["approvals.csv"].decode())))
    assert rows and {r["aksi"] for r in rows} >= {"paraf", "tanda tangan"}
    for r in rows:
        assert digests[r["sha256_pdf"]] == r["berkas_pdf"]
        assert digests[r["sha256_workbook"]] == r["berkas_workbook"]
        assert r["berkas_pdf"].endswith(".pdf") and r["berkas_workbook"].endswith(".xlsx")


def test_the_signer_approves_the_pdf_shown_and_the_final_points_to_it(demo):
    from models.session import make_engine, make_sessionmaker

    async def go():
        engine = make_engine(f"sqlite:///{demo.out / 'sopbot-demo.db'}")
        async with make_sessionmaker(engine)() as s:
            sign = (await s.execute(select(Approval).where(
                Approval.action == ApprovalAction.SIGN))).scalar_one()
            approved = await s.get(Document, sign.document_id)
            pdf = await s.get(StoredFile, approved.pdf_file_id)
            wb = await s.get(StoredFile, approved.workbook_file_id)
            final = (await s.execute(select(Document).where(
                Document.verification_code.is_not(None)))).scalar_one()
            final_pdf = await s.get(StoredFile, final.pdf_file_id)
        await engine.dispose()
        return sign, approved, pdf, wb, final, final_pdf

    sign, approved, pdf, wb, final, final_pdf = asyncio.run(go())
    store = demo.out / "files"
    assert sign.document_sha256 == pdf.sha256 == approved.sha256
    assert sign.workbook_sha256 == wb.sha256
    assert final.version > approved.version and final.approved_sha256 == pdf.sha256
    assert final.sha256 == final_pdf.sha256 != pdf.sha256
    assert hashlib.sha256((demo.out / FINAL).read_bytes()).hexdigest() == final_pdf.sha256
    assert "PAdES B-B" in final.signature and store.is_dir()


# ------------------------------------------------------------------ verification
async def test_start_deep_link_bare_code_lower_case_and_no_dash_all_verify(demo, tmp_path):
    from sqlalchemy import delete

    from bot.config import Config
    from models.intake import Inbox
    from bot.devtools.harness import Harness
    from bot.core.services import build_services
    from models.session import make_engine, make_sessionmaker

    cfg = Config()
    cfg.base_dir = demo.out
    # a copy of the demo's database, its inbox emptied: the new emulator counts update
    # ids from 1 again
    shutil.copy(demo.out / "sopbot-demo.db", tmp_path / "copy.db")
    cfg.database.url = f"sqlite:///{tmp_path / 'copy.db'}"
    cfg.storage.path = str(demo.out / "files")
    cfg.signing.trust_roots = [str(ca_of(demo))]
    engine = make_engine(cfg.database_url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        await s.execute(delete(Inbox))
    async with sm() as s:
        final = (await s.execute(select(Document).where(
            Document.verification_code.is_not(None)))).scalar_one()
        approved_sha = final.approved_sha256
        final_sha = (await s.get(StoredFile, final.pdf_file_id)).sha256
    code = final.verification_code
    h = Harness(build_services(cfg), sm)
    await h.start()
    try:
        stranger = h.emulator.add_user(user_id=4343, first_name="Auditor <BPK> & \"Co\"")
        answers = []
        for send in (lambda: stranger.send_command("/start", f"cek_{code}"),
                     lambda: stranger.send_text(code),
                     lambda: stranger.send_text(code.lower()),
                     lambda: stranger.send_text(code.replace("-", "").lower()),
                     lambda: stranger.send_command("/cek", code.replace("-", "").lower())):
            sent = await send()
            answers.append((await stranger.wait_for(after=sent)).text)
        for text in answers:
            assert "Dokumen asli" in text, text
            assert "050/1/II.08/2024" in text and "14 Oktober 2024" in text
            assert "Drs. Contoh Kepala Dinas, M.M. selaku Kepala Dinas" in text
            assert approved_sha in text and final_sha in text
            assert "Tanda tangan elektronik (PAdES): sah" in text and "DATA CONTOH" in text
        sent = await stranger.send_text("ZZZZ-ZZZZ")
        assert "tidak ditemukan" in (await stranger.wait_for(after=sent)).text
    finally:
        await h.stop()
        await engine.dispose()


def test_sopbot_verify_file_checks_the_register_and_the_signature(demo, tmp_path, capsys):
    from bot.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{demo.out / "sopbot-demo.db"}"\n'
                      f'[storage]\npath = "{demo.out / "files"}"\n'
                      f'[signing]\ntrust_roots = ["{ca_of(demo)}"]\n')
    assert main(["--config", str(config), "verify", str(demo.out / FINAL)]) == 0
    out = capsys.readouterr().out
    assert "TERDAFTAR - versi final" in out and "SAH (PAdES" in out and "HASIL: ASLI" in out
    changed = tmp_path / "diubah.pdf"
    changed.write_bytes(flip_one_byte((demo.out / FINAL).read_bytes()))
    assert main(["--config", str(config), "verify", str(changed)]) == 1
    captured = capsys.readouterr()
    assert "TIDAK TERDAFTAR" in captured.out and "TIDAK SAH" in captured.out


def test_people_invite_takes_the_bot_username_from_getme_or_says_what_to_configure(
        tmp_path, capsys):
    import threading

    from bot.cli import main
    from bot.devtools.emulator import BotApiEmulator
    from bot.devtools.example_data import example_office
    from bot.core.office_data import apply_office
    from models.session import make_engine, make_sessionmaker

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[database]\nurl = "{db}"\n')
    assert main(["--config", str(bare), "db", "upgrade"]) == 0

    async def seed():
        engine = make_engine(db)
        async with make_sessionmaker(engine)() as s, s.begin():
            await apply_office(s, example_office(2024))
        await engine.dispose()

    asyncio.run(seed())
    capsys.readouterr()
    # neither a username nor a token: no link with a placeholder, the command says why
    assert main(["--config", str(bare), "people", "invite", "--all"]) == 1
    err = capsys.readouterr().err
    assert "[telegram] bot_username" in err and "<username_bot>" not in err
    # a token: the username comes from getMe (here the local emulator's bot)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emulator = BotApiEmulator(token="123:LOCAL")
    asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(10)
    try:
        cfg = tmp_path / "token.toml"
        cfg.write_text(f'[database]\nurl = "{db}"\n[telegram]\ntoken = "123:LOCAL"\n'
                       f'api_base_url = "{emulator.base_url}"\n')
        assert main(["--config", str(cfg), "people", "invite", "--nip",
                     "197505052000031005"]) == 0
        *_, code, link = capsys.readouterr().out.strip().split("\t")
        assert link == f"https://t.me/sopbot_demo_bot?start={code}"
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_a_wrong_certificate_passphrase_stops_start_up_naming_the_key(tmp_path, capsys,
                                                                       monkeypatch):
    from bot.cli import main

    certs = make_demo_certificates(tmp_path / "c", "Dinas Uji")
    monkeypatch.setenv("SOPBOT_SIGNING_PASSPHRASE", "salah & <keliru>")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n'
                   f'[telegram]\ntoken = "123:LOCAL"\n'
                   f'[signing]\npkcs12_path = "{certs.pkcs12}"\n')
    assert main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "signing.pkcs12_path" in err and "frasa sandi salah" in err
    assert "salah & <keliru>" not in err  # the passphrase is never printed


# ------------------------------------------------------------------ TTE gateway client
async def test_tte_gateway_signs_refuses_a_wrong_passphrase_and_says_when_it_is_down(
        tmp_path, caplog):
    import base64
    import logging

    from aiohttp import web

    from bot.core.signing import GatewaySigner
    from reports.document_data import DocumentData, Signatory
    from reports.pdf import build_pdf_with_signature_box
    from tests.helpers import serve

    caplog.set_level(logging.DEBUG)
    certs = make_demo_certificates(tmp_path / "c", "BSrE Tiruan")
    personal = Pkcs12Signer(certs.pkcs12, certs.passphrase)  # the person's key at the gateway
    nik, passphrase = "1804010101700001", "rahasia & <TTE> \"kutip\" 🙂"
    auth = "Basic " + base64.b64encode(b"dinas-naker:kunci-klien").decode()
    seen: list[dict] = []

    async def sign(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != auth:
            return web.json_response({"error": "Unauthorized"}, status=401)
        form = await request.post()
        seen.append({k: v for k, v in form.items() if k not in ("file", "passphrase")})
        if form["nik"] != nik or form["passphrase"] != passphrase:
            return web.json_response({"error": "Passphrase anda salah", "status_code": 2031},
                                     status=400)
        signed = await personal.sign(form["file"].file.read(), signer_name="Kadis",
                                     capacity="Kepala Dinas", reason=form["reason"],
                                     location=form["location"],
                                     when=datetime(2024, 10, 14, 9, 15, tzinfo=WIB))
        return web.Response(body=signed, content_type="application/pdf")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="Service Unavailable")

    app = web.Application()
    app.router.add_post("/api/sign/pdf", sign)
    app.router.add_post("/rusak/api/sign/pdf", broken)
    runner, port = await serve(app)
    data = DocumentData(
        office_name="Dinas Uji", regency="Kabupaten Contoh", title="PENGUKURAN KINERJA",
        period_label="Triwulan III Tahun 2024", year=2024, rows=(),
        signatory=Signatory(place="Liwa", title="Kepala Dinas Uji", name="Kadis",
                            rank="Pembina", nip="1"), verification_code="ABCD-EFGH",
        e_signed=True)
    path, box = build_pdf_with_signature_box(data, tmp_path / "a.pdf")
    original = path.read_bytes()
    kwargs = dict(signer_name="Kadis", capacity="Kepala Dinas", reason="Persetujuan",
                  location="Liwa", when=datetime(2024, 10, 14, 9, 15, tzinfo=WIB),
                  box=SignatureBox(*box))
    try:
        gateway = GatewaySigner(f"http://127.0.0.1:{port}", "dinas-naker", "kunci-klien")
        # signed: a PDF whose PAdES signature validates, the box sent in PDF points
        call = gateway.for_person(nik, passphrase)
        assert passphrase not in repr(call)
        signed = await call.sign(original, **kwargs)
        assert (await check_pdf(signed, [certs.ca_cert])).valid
        # page 2: page 1 is the portrait summary, the signature follows the table
        assert seen[-1]["tampilan"] == "visible" and seen[-1]["halaman"] == "2"
        x1, y1, x2, y2 = SignatureBox(*box).pdf_rect()
        assert (seen[-1]["xAxis"], seen[-1]["width"]) == (str(x1), str(x2 - x1))
        # the call is one-shot: the passphrase is gone after it
        with pytest.raises(SigningError, match="sudah dipakai"):
            await call.sign(original, **kwargs)
        # wrong passphrase: a clear message, nothing signed
        with pytest.raises(SigningError, match="Passphrase TTE salah"):
            await gateway.for_person(nik, "keliru").sign(original, **kwargs)
        # the gateway in trouble (503) and down (nothing listening)
        with pytest.raises(SigningError, match="sedang bermasalah"):
            await GatewaySigner(f"http://127.0.0.1:{port}/rusak", "dinas-naker",
                                "kunci-klien").for_person(nik, passphrase).sign(original, **kwargs)
    finally:
        await runner.cleanup()
    with pytest.raises(SigningError, match="tidak dapat dihubungi"):
        await gateway.for_person(nik, passphrase).sign(original, **kwargs)
    assert passphrase not in caplog.text and "rahasia" not in caplog.text


def test_verification_link_is_the_configured_page_else_the_bot_deep_link(tmp_path):
    from bot.config import Config
    from bot.core.documents import normalize_code
    from bot.core.services import build_services

    cfg = Config()
    cfg.base_dir = tmp_path
    cfg.storage.path = str(tmp_path / "files")
    sv = build_services(cfg)
    assert sv.verification_link("ABCD-EFGH") is None  # nobody knows the bot's name yet
    sv.bot_username = "dinas_naker_bot"  # what getMe said at start-up
    assert sv.verification_link("ABCD-EFGH") == "https://t.me/dinas_naker_bot?start=cek_ABCD-EFGH"
    cfg.verification.url = "https://disnaker.lampungbaratkab.go.id/cek?kode={kode}"
    assert sv.verification_link("ABCD-EFGH") == \
        "https://disnaker.lampungbaratkab.go.id/cek?kode=ABCD-EFGH"
    for typed in ("ABCD-EFGH", "abcd-efgh", "abcdefgh", " AbCd EfGh ", "cek_ABCD-EFGH",
                  "CEK_abcdefgh"):
        assert normalize_code(typed) == "ABCD-EFGH", typed
    for typed in ("ABCD-EFG", "ABCD-EFGHJ", "ABC0-EFGH", "😀😀😀😀-EFGH", "", "<b>ABCD</b>"):
        assert normalize_code(typed) is None, typed

"""Step 8 through the Pemda's TTE gateway, as the Kadis does it in the chat: "Tandatangani"
asks for the passphrase, the bot deletes that message at once and the gateway (a local
mock of a BSrE-style API) signs the numbered final PDF. A wrong passphrase is asked
again, a gateway that is down leaves the step open, a restart between storing and
reading the message asks again; afterwards the passphrase is in no database row, no
file of the storage folder, no call journal, no log line and not in the emulator."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.core.secret_input import PASSPHRASE, REDACTED
from bot.core.signing import GatewaySigner, Pkcs12Signer, check_pdf, make_demo_certificates
from models import Approval, Conversation, Document, LetterNumber, StepRun
from models.enums import ApprovalAction, DocumentStatus, Role, StepStatus
from models.intake import Inbox
from tests.conftest import POSTGRES_URL
from tests.e2e import FIVE_ROLES, People, harness  # noqa: F401  (fixtures)
from tests.helpers import serve
from tests.test_documents_service import drive_to_compile
from tests.test_e2e_signoff import has_button
from tests.test_workflow import Walk

SECRET = 'Rahasia#TTE-2024 & <kutip "ganda"> 🙂'
NEEDLE = "Rahasia#TTE-2024"  # what a grep of raw bytes looks for (JSON may escape the rest)
WRONG = "Keliru#Sandi-777"
NIK = "1804010101700001"
CLIENT = ("dinas-naker", "kunci-klien")


@pytest.fixture
async def gateway(tmp_path):
    """A BSrE-style gateway on 127.0.0.1: signs with the person's demo certificate when
    NIK and passphrase match; ``state["down"]`` drops every connection;
    ``state["hold"]`` (an event) holds each request until it is set, ``state["entered"]``
    is set when a request arrives."""
    certs = make_demo_certificates(tmp_path / "bsre-tiruan", "Kadis di BSrE Tiruan")
    personal = Pkcs12Signer(certs.pkcs12, certs.passphrase)
    auth = "Basic " + base64.b64encode(":".join(CLIENT).encode()).decode()
    state = {"down": False, "calls": 0, "signed": 0, "hold": None,
             "entered": asyncio.Event()}

    async def sign(request: web.Request) -> web.StreamResponse:
        state["calls"] += 1
        state["entered"].set()
        if state["hold"] is not None:
            await state["hold"].wait()
        if state["down"]:
            request.transport.close()  # as a gateway that is down: no answer at all
            return web.Response(status=500)
        if request.headers.get("Authorization") != auth:
            return web.json_response({"error": "Unauthorized"}, status=401)
        form = await request.post()
        if form["nik"] != NIK or form["passphrase"] != SECRET:
            return web.json_response({"error": "Passphrase anda salah", "status_code": 2031},
                                     status=400)
        signed = await personal.sign(form["file"].file.read(), signer_name="Kadis",
                                     capacity="Kepala Dinas", reason=form["reason"],
                                     location=form["location"],
                                     when=datetime.now().astimezone())
        state["signed"] += 1
        return web.Response(body=signed, content_type="application/pdf")

    app = web.Application()
    app.router.add_post("/api/sign/pdf", sign)
    runner, port = await serve(app)
    state["url"] = f"http://127.0.0.1:{port}"
    state["ca"] = certs.ca_cert
    yield state
    await runner.cleanup()


def grep_files(root: Path, needles: list[str]) -> list[str]:
    """The files under ``root`` (or ``root`` itself) that contain one of ``needles``."""
    paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    found = []
    for path in paths:
        data = path.read_bytes()
        if any(n.encode() in data for n in needles):
            found.append(str(path))
    return found


async def state_of(sessionmaker, cycle_id: int):
    async with sessionmaker() as s:
        numbers = (await s.execute(select(func.count()).select_from(LetterNumber))).scalar_one()
        signs = (await s.execute(select(func.count()).select_from(Approval).where(
            Approval.action == ApprovalAction.SIGN))).scalar_one()
        docs = (await s.execute(select(Document).where(Document.cycle_id == cycle_id)
                                .order_by(Document.version))).scalars().all()
        run8 = (await s.execute(select(StepRun).where(
            StepRun.cycle_id == cycle_id, StepRun.step_no == 8)
            .order_by(StepRun.id.desc()))).scalars().first()
    return numbers, signs, docs, run8


@pytest.fixture
def journaled(monkeypatch):
    """Every line the call journals wrote (they are removed after each commit)."""
    from bot.telegram.intake import CallJournal

    lines: list[str] = []
    append = CallJournal._append

    def spy(self, entry, line=None):  # every line as written (answers, pending calls)
        lines.append(line if line is not None else
                     json.dumps(entry, ensure_ascii=False, default=str))
        return append(self, entry, line)

    monkeypatch.setattr(CallJournal, "_append", spy)
    return lines


async def test_kadis_signs_through_the_tte_gateway_and_the_passphrase_is_kept_nowhere(
        harness, sessionmaker, services, clock, gateway, journaled, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    people = await People(harness).load(*FIVE_ROLES)
    kasubag, sek, kadis = (people.user(Role.KASUBAG), people.user(Role.SEKRETARIS),
                           people.user(Role.KADIS))
    staf = people.user(Role.STAF, "SEK")
    kadis_person = people.person(Role.KADIS)
    services.config.signing.gateway_url = gateway["url"]
    services.config.signing.gateway_username, services.config.signing.gateway_password = CLIENT
    services.config.signing.gateway_nik = {kadis_person.nip: NIK}
    services.gateway = GatewaySigner(gateway["url"], *CLIENT)

    # steps 1-5 through the workflow, 6-7 in the chat
    cycle_id, _run6 = await drive_to_compile(Walk(sessionmaker, services, clock))
    await harness.sender.drain()
    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    q = await kasubag.press(card, text="Susun dokumen")
    v1 = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"), timeout=30)
    q = await kasubag.press(v1, text="Ajukan untuk paraf")
    await kasubag.wait_for(after=q, text_contains="diajukan kepada")
    card7 = await sek.wait_for(predicate=has_button("Paraf"))
    q = await sek.press(card7, text="Paraf")
    await sek.wait_for(after=q, text_contains="Diparaf oleh")

    # step 8: "Tandatangani" asks for the passphrase; the card keeps its buttons
    card8 = await kadis.wait_for(predicate=has_button("Tandatangani"))
    q = await kadis.press(card8, text="Tandatangani")
    ask = await kadis.wait_for(after=q, text_contains="passphrase TTE")
    assert ask.force_reply and "saya hapus" in ask.text
    assert "Tandatangani" in kadis.message(card8.message_id).button_texts

    # a wrong passphrase: deleted at once, said clearly, asked again, nothing signed
    sent = await kadis.reply_to(ask, WRONG)
    wrong = await kadis.wait_for(after=sent, text_contains="Passphrase TTE salah")
    again = await kadis.wait_for(after=sent, text_contains="sekali lagi")
    assert again.force_reply
    assert sent["message_id"] not in kadis._user_messages  # deleted in the chat
    await harness.settle()
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (0, 0) and run8.status == StepStatus.OPEN
    assert docs[-1].status == DocumentStatus.INITIALLED and len(docs) == 1
    assert "belum ditandatangani" in wrong.text

    # the gateway is down: a clear message, the step stays open, no number used
    gateway["down"] = True
    sent = await kadis.reply_to(again, SECRET)
    down = await kadis.wait_for(after=sent, text_contains="tidak dapat dihubungi")
    assert "tetap terbuka" in down.text and "Tidak ada nomor surat" in down.text
    assert sent["message_id"] not in kadis._user_messages
    await harness.settle()
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (0, 0) and run8.status == StepStatus.OPEN and len(docs) == 1
    async with sessionmaker() as s:  # no longer waiting: the next text is ordinary text
        assert await s.get(Conversation, kadis_person.id) is None
    gateway["down"] = False

    # a restart after the message was stored and before it was read: the passphrase
    # was only in the dead process's memory, so the bot asks again
    q = await kadis.press(kadis.message(card8.message_id), text="Tandatangani")
    ask = await kadis.wait_for(after=q, text_contains="passphrase TTE")
    await harness.settle()
    await harness.stop_bot()
    sent = await kadis.reply_to(ask, SECRET)
    queued = next(u for u in harness.emulator._updates
                  if (u.get("message") or {}).get("message_id") == sent["message_id"])
    from bot.telegram.app import build_application
    from bot.devtools.harness import TEST_TOKEN

    dying = build_application(services, sessionmaker, token=TEST_TOKEN,
                              base_url=harness.emulator.base_url)
    assert await dying.bot_data["intake"].store_json(json.loads(json.dumps(queued))) == 1
    del dying  # the process dies: its memory (the passphrase) with it
    async with sessionmaker() as s:
        row = await s.get(Inbox, queued["update_id"])
        assert row.payload["message"]["text"] == REDACTED
    await harness.start_bot()
    lost = await kadis.wait_for(after=sent, text_contains="bot dimulai ulang")
    assert lost.force_reply
    assert sent["message_id"] not in kadis._user_messages
    await harness.settle()
    assert (await state_of(sessionmaker, cycle_id))[:2] == (0, 0)

    # the right passphrase: the gateway signs the numbered final PDF
    sent = await kadis.reply_to(lost, SECRET)
    done = await kadis.wait_for(after=sent, text_contains="ditandatangani secara elektronik",
                                timeout=30)
    assert sent["message_id"] not in kadis._user_messages
    number = re.search(r"nomor (\S+) tanggal", done.content).group(1)
    assert done.document is not None  # the final PDF carries the news as its caption
    final_pdf = harness.emulator.sent_files(kadis.chat_id)[-1]
    assert final_pdf.filename.endswith("-final.pdf")
    check = await check_pdf(final_pdf.data, [gateway["ca"]])
    assert check.valid and "BSrE Tiruan" in check.signer
    assert not kadis.message(card8.message_id).buttons  # the card cannot be pressed again
    await harness.settle()
    numbers, signs, docs, run8 = await state_of(sessionmaker, cycle_id)
    assert (numbers, signs) == (1, 1) and run8.status == StepStatus.DONE
    assert docs[-1].status == DocumentStatus.NUMBERED and docs[-1].signature.startswith("TTE")
    assert check.fingerprint in docs[-1].signature
    assert docs[-1].approved_sha256 == docs[0].sha256
    assert gateway["signed"] == 1
    # the staf is told the number was given at the signature; the Kasubag archives
    told = await staf.wait_for(text_contains="secara otomatis")
    assert number in told.text
    card10 = await kasubag.wait_for(predicate=has_button("Periksa & arsipkan"))
    q = await kasubag.press(card10, text="Periksa & arsipkan")
    await kasubag.wait_for(after=q, text_contains="diarsipkan")
    await harness.settle()

    # the passphrase is nowhere: database file, storage folder (files, call journals),
    # captured logs, the emulator's copies of the updates
    needles = [SECRET, NEEDLE, WRONG]
    if POSTGRES_URL:  # every row of every table, as text
        import models

        rows = []
        async with sessionmaker() as s:
            for table in models.Base.metadata.sorted_tables:
                rows += [repr(tuple(row)) for row in (await s.execute(select(table))).all()]
        dump = "\n".join(rows)
        assert "[passphrase TTE" in dump, "the dump must see the inbox payloads"
        assert not [n for n in needles if n in dump]
    else:  # the SQLite file, its -wal and -shm: every byte
        db_files = sorted(tmp_path.glob("test.db*"))
        assert db_files
        assert any(REDACTED.split()[0].encode() in p.read_bytes() for p in db_files), \
            "the grep must see the inbox payloads"
        assert not [p for p in db_files if grep_files(p, needles)]
    assert any('"deleteMessage"' in line for line in journaled)
    assert not any(n in line for line in journaled for n in needles)
    store_root = services.store.root
    assert (store_root / "inbox-journal").exists() or store_root.exists()
    assert grep_files(store_root, needles) == []
    async with sessionmaker() as s:
        payloads = [json.dumps(p, ensure_ascii=False)
                    for p in (await s.execute(select(Inbox.payload))).scalars()]
    assert sum(REDACTED in p for p in payloads) == 4  # wrong, down, lost, signed
    assert not any(n in p for p in payloads for n in needles)
    assert caplog.records
    leaked = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records
              if any(n in r.getMessage() or n in repr(r.args) for n in needles)]
    assert leaked == []
    assert not any(n in caplog.text for n in needles)
    emulated = json.dumps([harness.emulator._updates, list(harness.emulator._update_log.values()),
                           list(kadis._user_messages.values())], ensure_ascii=False)
    assert not any(n in emulated for n in needles)


async def test_a_text_is_redacted_when_the_database_says_the_sender_waits(
        harness, sessionmaker, services):
    """The intake's check at store time, without the in-memory mark: the conversation
    committed in the database is enough (a restart between question and answer)."""
    people = await People(harness).load((Role.KADIS, None))
    kadis, person = people.user(Role.KADIS), people.person(Role.KADIS)
    intake = harness.intake
    async with sessionmaker() as s, s.begin():
        s.add(Conversation(person_id=person.id, kind=PASSPHRASE, state="passphrase",
                           data={"run": 0, "doc": 0}))
    await harness.stop_bot()
    sent = await kadis.send_text(SECRET)
    other = await kadis.send_text("/batal")
    updates = [u for u in harness.emulator._updates if (u.get("message") or {}).get(
        "message_id") in (sent["message_id"], other["message_id"])]
    from bot.telegram.app import build_application
    from bot.devtools.harness import TEST_TOKEN

    app = build_application(services, sessionmaker, token=TEST_TOKEN,
                            base_url=harness.emulator.base_url)
    intake = app.bot_data["intake"]
    assert not intake.secrets.expected()
    for u in updates:
        await intake.store_json(u)
    async with sessionmaker() as s:
        rows = {r.update_id: r.payload for r in (await s.execute(select(Inbox))).scalars()}
    texts = [rows[u["update_id"]]["message"]["text"] for u in updates]
    assert texts == [REDACTED, "/batal"]  # /batal stays a command
    assert intake.secrets.take(updates[0]["update_id"]) == SECRET
    intake.secrets.drop(updates[0]["update_id"])  # processed: forgotten
    assert intake.secrets.take(updates[0]["update_id"]) is None
    await harness.start_bot()


async def test_the_pades_signing_time_is_the_bots_clock(tmp_path):
    """pyHanko reads the system clock for the signature's time; the office signer takes
    the time of the bot's clock (the injected clock in tests and the demo)."""
    from pypdf import PdfReader

    from bot.core.signing import SignatureBox
    from reports.document_data import DocumentData, Signatory
    from reports.pdf import build_pdf_with_signature_box
    from tests.conftest import POSTGRES_URL, wib

    certs = make_demo_certificates(tmp_path / "c", "Dinas Uji")
    signer = Pkcs12Signer(certs.pkcs12, certs.passphrase)
    data = DocumentData(
        office_name="Dinas Uji", regency="Kabupaten Contoh", title="PENGUKURAN KINERJA",
        period_label="Triwulan III Tahun 2024", year=2024, rows=(),
        signatory=Signatory(place="Liwa", title="Kepala Dinas Uji", name="Kadis",
                            rank="Pembina", nip="1"), verification_code="ABCD-EFGH",
        e_signed=True)
    path, box = build_pdf_with_signature_box(data, tmp_path / "a.pdf")
    clock_time = wib(2024, 10, 14, 9, 15, 30)
    signed = await signer.sign(path.read_bytes(), signer_name="Kadis", capacity="Kepala Dinas",
                               reason="Persetujuan", location="Liwa",
                               when=wib(2024, 10, 11, 16, 0), box=SignatureBox(*box),
                               signing_time=clock_time)
    import io

    sig = next(f.get_object()["/V"] for f in PdfReader(io.BytesIO(signed)).trailer["/Root"]
               ["/AcroForm"]["/Fields"] if f.get_object().get("/FT") == "/Sig")
    assert sig["/M"].startswith("D:20241014091530+07")  # the clock's time, in WIB
    check = await check_pdf(signed, [certs.ca_cert])
    assert check.valid
    if check.signed_at is not None:  # the CMS signing time, when pyHanko writes one
        assert check.signed_at == clock_time


def test_gateway_config_from_the_file_and_env(tmp_path):
    from bot.config import Config, ConfigError, load_config
    from bot.core.signing import gateway_from_config, gateway_nik

    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(
        '[signing]\ngateway_url = "https://tte.example-kab.go.id/"\n'
        'gateway_username = "dinas-naker"\n'
        '[signing.gateway_nik]\n"196805121994031005" = "1804010101700001"\n')
    cfg = load_config(cfg_file, env={})
    gw = gateway_from_config(cfg, env={"SOPBOT_TTE_GATEWAY_PASSWORD": "kunci & <klien>"})
    assert gw.url == "https://tte.example-kab.go.id" and gw._auth == ("dinas-naker",
                                                                      "kunci & <klien>")
    assert "kunci" not in gw.description
    assert gateway_nik(cfg, " 196805121994031005 ") == "1804010101700001"
    assert gateway_nik(cfg, None) == "" and gateway_nik(cfg, "1") == ""
    assert gateway_from_config(Config(), env={}) is None  # no gateway configured
    with pytest.raises(ConfigError, match="bukan keduanya"):
        gateway_from_config(cfg, env={"SOPBOT_SIGNING_PKCS12": "/x.p12"})


def test_redaction_replaces_the_text_and_a_quoted_own_message_keeps_the_bots():
    from bot.core.secret_input import SecretInput

    secrets = SecretInput()
    payload = {"update_id": 9, "message": {
        "message_id": 5, "text": SECRET, "entities": [{"type": "email", "offset": 0,
                                                       "length": 3}],
        "quote": {"text": SECRET, "position": 0},
        "reply_to_message": {"message_id": 4, "text": SECRET, "from": {"id": 1,
                                                                        "is_bot": False}}}}
    stored = secrets.redact(9, payload)
    assert NEEDLE not in json.dumps(stored, ensure_ascii=False)
    assert stored["message"]["text"] == REDACTED and "entities" not in stored["message"]
    assert payload["message"]["text"] == SECRET  # the caller's copy is left alone
    # held until the update is processed (a run rolled back and run again reads it again)
    assert secrets.take(9) == SECRET and secrets.take(9) == SECRET
    secrets.drop(9)
    assert secrets.take(9) is None
    assert SECRET not in repr(secrets)
    asked = {"message_id": 4, "text": "Kirim passphrase TTE Anda", "from": {"is_bot": True}}
    stored = secrets.redact(10, {"message": {"message_id": 6, "text": SECRET,
                                             "reply_to_message": dict(asked)}})
    assert stored["message"]["reply_to_message"]["text"] == asked["text"]


def test_an_asked_mark_stays_until_that_persons_update_commits():
    # people are processed in parallel: another person's commit must not clear the mark
    # of a Kadis whose "Tandatangani" is still being processed (their answer would then
    # be stored unredacted if it came before that commit)
    from bot.core.secret_input import SecretInput

    secrets = SecretInput()
    secrets.expect(700001)
    secrets.settle(700002)
    assert secrets.expected() == frozenset({700001})
    secrets.settle(None)
    assert secrets.expected() == frozenset({700001})
    secrets.settle(700001)
    assert secrets.expected() == frozenset()

"""Only the Kadis (or the Plh./Plt. Kadis appointed now) signs; only the Sekretaris (or
their Plh./Plt.) initials. One rule (``bot.core.authority``) is asked at every move of a step
(/alihkan, ``sopbot people change|deactivate``, acting appointments) and again at the
moment of every action, with the injected clock; the capacity in which a person signed or
initialled is recorded with the approval, printed in the PDF and shown by /cek and
``sopbot verify``."""
from __future__ import annotations

import asyncio
from datetime import date

import pytest
from alembic import command
from sqlalchemy import select

from bot.cli import main
from bot.core.documents import compile_documents, stamp_numbered
from bot.core.workflow import InvalidInput, NotAllowed
from models import Approval, Person, StepRun
from models.migrate import alembic_config
from models.enums import ApprovalAction, Role, StepStatus
from tests.conftest import wib
from tests.e2e import FIVE_ROLES, People, harness  # noqa: F401  (fixtures)
from tests.test_administration import adm, appoint_plh, audit_rows, to_signature
from tests.test_documents_service import drive_to_compile, flat, pdf_text, stored_bytes
from tests.test_e2e_signoff import has_button
from tests.helpers import snapshot
from tests.test_workflow import Walk, open_run

CANNOT_HOLD = "hanya dapat dipegang"
# hostile but real-world names: quotes, <, &, dots, an apostrophe
KASUBAG_NAME = 'Ir. Siti "Ani" <Rahayu> & Putra, M.Si.'
KABID_NAME = "Dr. Budi O'Neil <Plh> & Co., S.H."


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


async def rename(walk: Walk, person: Person, name: str) -> Person:
    async with walk.sm() as s, s.begin():
        p = await s.get(Person, person.id)
        p.name = name
    async with walk.sm() as s:
        return await s.get(Person, person.id)


async def refused(walk: Walk, fn, exc, match: str) -> str:
    """The move raises ``exc`` matching ``match``, the database is exactly as before;
    returns the refusal text."""
    async with walk.sm() as s:
        before = await snapshot(s)
    with pytest.raises(exc, match=match) as info:
        await walk(fn)
    async with walk.sm() as s:
        assert await snapshot(s) == before
    return info.value.message


async def approvals(walk: Walk) -> list[Approval]:
    async with walk.sm() as s:
        return list((await s.execute(select(Approval).order_by(Approval.id))).scalars())


async def to_paraf(walk: Walk, before_submit=None) -> tuple[int, int, int]:
    """Steps 1-6 done: (cycle, open step-7 run, submitted document)."""
    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag = await walk.who(Role.KASUBAG)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    if before_submit is not None:
        await before_submit()
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6_id, doc.id))
    return cycle_id, run7.id, doc.id


async def appoint_both(walk: Walk, plh_sekretaris: Person, plh_kadis: Person) -> None:
    await appoint_plh(walk, plh_sekretaris, date(2024, 10, 7), date(2024, 10, 8),
                      role=Role.SEKRETARIS)
    await appoint_plh(walk, plh_kadis, date(2024, 10, 7), date(2024, 10, 8))


def cli(tmp_path, db_url, *args: str) -> int:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "files"}"\n')
    return main(["--config", str(cfg), *args])


# ------------------------------------------------------------------ the attack, core
async def test_the_sekretaris_cannot_move_the_kadis_signature_to_himself(walk):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")
    cycle_id, run8_id, doc_id = await to_signature(walk)
    # the move is refused with the reason, and nothing changes
    for to in (sek, kasubag, staf):
        message = await refused(walk, adm(lambda a, to=to: a.reassign_run(
            sek, run8_id, to.id)), InvalidInput, CANNOT_HOLD)
        assert "langkah 8 hanya dapat dipegang Kepala Dinas," in message
        assert "Plh./Plt." in message
    assert (await open_run(walk, cycle_id, 8)).assignee_id == kadis.id
    # nobody but the Kadis may hold it: /alihkan has nobody to offer
    run8 = await open_run(walk, cycle_id, 8)
    assert await walk(adm(lambda a: a.candidates_for_run(run8))) == []
    # a run left with the Sekretaris by the old code: his press is refused at the moment
    # of the action, the Kadis (who may) takes it over and signs as Kepala Dinas
    async with walk.sm() as s, s.begin():
        (await s.get(StepRun, run8_id)).assignee_id = sek.id
    await refused(walk, lambda wf, s: wf.approve(sek, run8_id, doc_id), NotAllowed,
                  "tidak berwenang")
    await walk(lambda wf, s: wf.approve(kadis, run8_id, doc_id))
    sign = [a for a in await approvals(walk) if a.action == ApprovalAction.SIGN]
    assert [(a.person_id, a.capacity, a.acting_as) for a in sign] == [
        (kadis.id, "Kepala Dinas", "")]


async def test_only_the_sekretaris_or_their_plh_may_hold_the_paraf(walk):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    kasubag = await walk.who(Role.KASUBAG)
    cycle_id, run7_id, doc_id = await to_paraf(walk)
    # the Kadis may reassign any step, but neither to himself nor to the Kasubag
    for to in (kadis, kasubag):
        message = await refused(walk, adm(lambda a, to=to: a.reassign_run(
            kadis, run7_id, to.id)), InvalidInput, CANNOT_HOLD)
        assert "langkah 7 hanya dapat dipegang Sekretaris," in message
    # the Kasubag appointed Plh. Sekretaris from today: the step moves to her at once,
    # and now /alihkan may give it back to the Sekretaris
    await appoint_plh(walk, kasubag, date(2024, 10, 7), date(2024, 10, 8),
                      role=Role.SEKRETARIS)
    assert (await open_run(walk, cycle_id, 7)).assignee_id == kasubag.id
    run7 = await open_run(walk, cycle_id, 7)
    offered = await walk(adm(lambda a: a.candidates_for_run(run7)))
    assert [p.id for p in offered] == [sek.id]
    await walk(lambda wf, s: wf.approve(kasubag, run7_id, doc_id))
    (paraf,) = await approvals(walk)
    assert (paraf.person_id, paraf.capacity, paraf.acting_as) == (
        kasubag.id, "Plh. Sekretaris", "Plh.")


# ------------------------------------------------------------------ the attack, over the bot
async def test_alihkan_over_the_bot_offers_and_accepts_nobody_who_cannot_sign(
        harness, sessionmaker, services, clock):
    people = await People(harness).load(*FIVE_ROLES)
    kadis, sek = people.user(Role.KADIS), people.user(Role.SEKRETARIS)
    kadis_p, sek_p = people.person(Role.KADIS), people.person(Role.SEKRETARIS)
    walk = Walk(sessionmaker, services, clock)
    cycle_id, run8_id, doc_id = await to_signature(walk)
    await harness.settle()
    card8 = await kadis.wait_for(predicate=has_button("Tandatangani"))

    # /alihkan: the Kadis' signature is listed, but nobody is offered for it
    sent = await sek.send_command("/alihkan")
    pick = await sek.wait_for(after=sent, text_contains="Pilih tugas terbuka")
    q = await sek.press(pick, text="8. Menandatangani")
    to = await sek.wait_for(after=q, text_contains="langkah 8")
    assert "Tidak ada pegawai lain yang dapat memegang langkah 8" in to.text
    assert "Kepala Dinas" in to.text
    assert not any("Contoh Sekretaris" in b for b in to.button_texts)

    # the button crafted anyway ("give step 8 to me") is refused with the reason
    data = f"alhp:{run8_id}:{sek_p.id}"
    to.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
    answer = await sek.wait_for_answer(await sek.press(to, data=data))
    assert "Ditolak: langkah 8 hanya dapat dipegang Kepala Dinas" in answer.text
    # and so is a crafted "Tandatangani"
    data = f"sgn:{run8_id}:{doc_id}"
    to.reply_markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
    answer = await sek.wait_for_answer(await sek.press(to, data=data))
    assert "tidak berwenang" in answer.text
    async with sessionmaker() as s:
        run8 = await s.get(StepRun, run8_id)
        assert run8.assignee_id == kadis_p.id and run8.status == StepStatus.OPEN
        assert not (await s.execute(select(Approval).where(
            Approval.action == ApprovalAction.SIGN))).scalars().all()

    # the Kadis signs from his own card
    q = await kadis.press(card8, text="Tandatangani")
    await kadis.wait_for(after=q, text_contains="Ditandatangani")


# ------------------------------------------------------------------ people change|deactivate
async def test_change_and_deactivate_refuse_a_successor_who_cannot_sign(
        walk, tmp_path, db_url, capsys):
    kadis, kasubag = await walk.who(Role.KADIS), await walk.who(Role.KASUBAG)
    staf = await walk.who(Role.STAF, "SEK")
    cycle_id, run8_id, _ = await to_signature(walk)
    admin = await walk(adm(lambda a: a.add_person(None, name="Admin Kantor", role=Role.ADMIN)))

    await refused(walk, adm(lambda a: a.deactivate(admin, kadis.id, successor_id=kasubag.id)),
                  InvalidInput, CANNOT_HOLD)
    await refused(walk, adm(lambda a: a.change_person(
        None, kadis.id, role=Role.SEKRETARIS, successor_id=staf.id)), InvalidInput, CANNOT_HOLD)
    # nobody may take the Kadis' signature: no choice is offered, no default either
    assert await walk(adm(lambda a: a.successor_choices(kadis))) == []
    assert await walk(adm(lambda a: a.default_successor(kadis))) is None
    await refused(walk, adm(lambda a: a.deactivate(admin, kadis.id)), InvalidInput,
                  "tugas terbuka")

    # the command line says why and changes nothing
    assert await asyncio.to_thread(cli, tmp_path, db_url, "people", "deactivate", "--nip",
                                   kadis.nip, "--successor-nip", kasubag.nip) == 1
    err = capsys.readouterr().err
    assert CANNOT_HOLD in err and "Kepala Dinas" in err
    assert await asyncio.to_thread(cli, tmp_path, db_url, "people", "change", "--nip",
                                   kadis.nip, "--role", "kasubag", "--successor-nip",
                                   staf.nip) == 1
    assert CANNOT_HOLD in capsys.readouterr().err
    run8 = await open_run(walk, cycle_id, 8)
    assert run8.id == run8_id and run8.assignee_id == kadis.id
    async with walk.sm() as s:
        assert (await s.get(Person, kadis.id)).active

    # with a Plt. Kepala Dinas appointed, the step is theirs: the Kadis may leave
    await appoint_plh(walk, kasubag, date(2024, 10, 7), date(2024, 10, 31))
    assert (await open_run(walk, cycle_id, 8)).assignee_id == kasubag.id
    result = await walk(adm(lambda a: a.deactivate(admin, kadis.id, reason="mutasi")))
    assert result.runs == []


# ------------------------------------------------------------------ checked at the action
async def test_a_plh_whose_range_ended_cannot_sign_a_second_later(walk, clock):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    cycle_id, run8_id, doc_id = await to_signature(walk)
    await appoint_plh(walk, sek, date(2024, 10, 7), date(2024, 10, 9))
    assert (await open_run(walk, cycle_id, 8)).assignee_id == sek.id
    step8 = walk.sv.sop.step(8)

    async def capacity(person, at):
        from bot.core.authority import holding_capacity  # the rule

        async with walk.sm() as s:
            return await holding_capacity(s, person, step8, None, at)

    assert (await capacity(sek, wib(2024, 10, 9, 23, 59, 59))).label == "Plh. Kepala Dinas"
    assert await capacity(sek, wib(2024, 10, 10, 0, 0, 1)) is None

    # one second after the range, before any job moved the step back: refused
    clock.set(wib(2024, 10, 10, 0, 0, 1))
    await refused(walk, lambda wf, s: wf.approve(sek, run8_id, doc_id), NotAllowed,
                  "tidak berwenang")
    assert (await open_run(walk, cycle_id, 8)).assignee_id == sek.id  # still named
    # the Kadis holds the post again: he signs although the run still names the Plh.
    await walk(lambda wf, s: wf.approve(kadis, run8_id, doc_id))
    (sign,) = [a for a in await approvals(walk) if a.action == ApprovalAction.SIGN]
    assert (sign.person_id, sign.capacity, sign.acting_as) == (kadis.id, "Kepala Dinas", "")
    moves = [p for _, p in await audit_rows(walk, "step.reassign") if p["run"] == run8_id]
    assert moves[-1]["reason"] == "takeover"
    assert (moves[-1]["from"], moves[-1]["to"]) == (sek.id, kadis.id)
    async with walk.sm() as s:
        assert (await s.get(StepRun, run8_id)).completed_by_id == kadis.id


# ------------------------------------------------------------------ the capacity is shown
async def test_plh_signature_and_plh_paraf_show_their_capacity_in_the_pdf_and_cek(
        harness, sessionmaker, services, clock, tmp_path, db_url, capsys):
    walk = Walk(sessionmaker, services, clock)
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    staf = await walk.who(Role.STAF, "SEK")
    kasubag = await rename(walk, await walk.who(Role.KASUBAG), KASUBAG_NAME)
    kabid = await rename(walk, await walk.who(Role.KABID, "PPTK"), KABID_NAME)
    # once the data is in, Monday to Tuesday: the Kasubag is Plh. Sekretaris, the Kabid
    # PPTK Plh. Kepala Dinas
    cycle_id, run7_id, doc_id = await to_paraf(
        walk, before_submit=lambda: appoint_both(walk, kasubag, kabid))
    assert (await open_run(walk, cycle_id, 7)).assignee_id == kasubag.id
    run8 = await walk(lambda wf, s: wf.approve(kasubag, run7_id, doc_id))
    assert run8.assignee_id == kabid.id
    clock.advance(minutes=5)
    run9 = await walk(lambda wf, s: wf.approve(kabid, run8.id, doc_id))
    paraf, sign = await approvals(walk)
    assert (paraf.person_id, paraf.capacity) == (kasubag.id, "Plh. Sekretaris")
    assert (sign.person_id, sign.capacity) == (kabid.id, "Plh. Kepala Dinas")

    async def number(wf, s):
        letter = await wf.assign_number(staf, run9.id)
        return await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)

    final = await walk(number)
    text = flat(pdf_text(await stored_bytes(walk, final.pdf_file_id)))
    block = text[text.index("Plh. Kepala Dinas Tenaga Kerja"):]
    block = block[:block.index("Halaman")]  # the signature block, to the page's foot
    assert block.startswith("Plh. Kepala Dinas Tenaga Kerja dan Perindustrian Kabupaten")
    assert KABID_NAME in block[:250] and f"NIP. {kabid.nip}" in block[:300]
    assert f"Paraf koordinasi: Plh. Sekretaris - {KASUBAG_NAME}" in text
    assert kadis.name not in block and sek.name not in block and kadis.nip not in text

    # /cek, for anyone
    stranger = harness.emulator.add_user(user_id=4243, first_name="Warga")
    sent = await stranger.send_command("/cek", final.verification_code)
    ok = await stranger.wait_for(after=sent, text_contains="Dokumen asli")
    assert f"Ditandatangani oleh: {KABID_NAME} selaku Plh. Kepala Dinas" in ok.text
    assert f"Diparaf oleh: {KASUBAG_NAME} selaku Plh. Sekretaris" in ok.text

    # sopbot verify (the schema came from the models: mark it as migrated)
    await asyncio.to_thread(command.stamp, alembic_config(db_url), "head")
    assert await asyncio.to_thread(cli, tmp_path, db_url, "verify",
                                   final.verification_code) == 0
    out = capsys.readouterr().out
    assert f"Penanda tangan: {KABID_NAME} selaku Plh. Kepala Dinas" in out
    assert f"{KASUBAG_NAME} selaku Plh. Sekretaris" in out


async def test_the_kadis_signs_as_kepala_dinas_and_the_sekretaris_initials_as_sekretaris(walk):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    staf = await walk.who(Role.STAF, "SEK")
    cycle_id, run8_id, doc_id = await to_signature(walk)
    run9 = await walk(lambda wf, s: wf.approve(kadis, run8_id, doc_id))
    paraf, sign = await approvals(walk)
    assert (paraf.person_id, paraf.capacity, sign.person_id, sign.capacity) == (
        sek.id, "Sekretaris", kadis.id, "Kepala Dinas")

    async def number(wf, s):
        letter = await wf.assign_number(staf, run9.id)
        return await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)

    final = await walk(number)
    text = flat(pdf_text(await stored_bytes(walk, final.pdf_file_id)))
    assert "Plh." not in text
    assert f"Paraf koordinasi: Sekretaris - {sek.name}" in text
    block = text[text.index("Kepala Dinas Tenaga Kerja dan Perindustrian Kabupaten"):]
    assert kadis.name in block[:200]

"""Office administration, without Telegram: a Plh. signs in the Kadis' place, open steps
follow the appointment and come back, people leave with their tasks handed over, open
steps are reassigned, and the CLI does the same."""
from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from bot.core.administration import Administration, day_range, parse_range, sync_acting
from bot.core.documents import compile_documents, stamp_numbered
from bot.telegram.scheduling import run_deadline_tasks
from bot.core.workflow import InvalidInput, NotAllowed, NotAssignee
from models import (
    ActingAppointment, ActingKind, Approval, AuditLog, Outbox, Person, StepRun, Submission,
)
from models.enums import ApprovalAction, CycleKind, Role, StepStatus
from tests.conftest import wib
from tests.test_documents_service import (
    drive_to_compile, flat, pdf_text, stored_bytes,
)
from tests.test_workflow import Walk, open_run, to_collection


@pytest.fixture
def walk(sessionmaker, services, clock, office):
    return Walk(sessionmaker, services, clock)


def adm(fn):
    """A workflow call of ``Walk`` on the administration service."""
    return lambda wf, s: fn(Administration(s, wf.sv))


async def fresh(walk: Walk, person: Person) -> Person:
    async with walk.sm() as s:
        return await s.get(Person, person.id)


async def audit_rows(walk: Walk, action: str) -> list[tuple[AuditLog, dict]]:
    async with walk.sm() as s:
        rows = (await s.execute(select(AuditLog).where(AuditLog.action == action)
                                .order_by(AuditLog.id))).scalars().all()
    return [(r, json.loads(r.payload)) for r in rows]


async def texts_to(walk: Walk, person: Person) -> list[str]:
    async with walk.sm() as s:
        return [o.payload["text"] for o in (await s.execute(
            select(Outbox).where(Outbox.person_id == person.id).order_by(Outbox.id))).scalars()]


async def to_signature(walk: Walk) -> tuple[int, int, int]:
    """Steps 1-7 (documents compiled and initialled): (cycle, open step-8 run, document)."""
    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag, sek = await walk.who(Role.KASUBAG), await walk.who(Role.SEKRETARIS)

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run7 = await walk(lambda wf, s: wf.submit_documents(kasubag, run6_id, doc.id))
    walk.clock.advance(minutes=5)
    run8 = await walk(lambda wf, s: wf.approve(sek, run7.id, doc.id))
    return cycle_id, run8.id, doc.id


async def appoint_plh(walk: Walk, acting: Person, start: date, end: date,
                      role=Role.KADIS, unit_id=None, actor=None):
    starts, ends = day_range(start, end)
    return await walk(adm(lambda a: a.appoint(
        actor, role=role, unit_id=unit_id, acting_id=acting.id, kind=ActingKind.PLH,
        starts_at=starts, ends_at=ends, decree="800/123/SP/II.08/2024")))


def test_a_date_range_is_read_in_indonesian_form():
    starts, ends = parse_range("8-10-2024 s.d. 10-10-2024")
    assert starts == wib(2024, 10, 8, 0, 0) and ends == wib(2024, 10, 11, 0, 0)
    assert parse_range("2024-10-08") == (wib(2024, 10, 8), wib(2024, 10, 9))
    with pytest.raises(InvalidInput):
        parse_range("besok lusa")
    with pytest.raises(InvalidInput):
        parse_range("10-10-2024 s.d. 8-10-2024")


async def test_a_plh_signs_in_the_kadis_place_and_the_pdf_shows_it(walk, clock, services):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")
    cycle_id, run8_id, doc_id = await to_signature(walk)  # Monday 7 October
    assert (await open_run(walk, cycle_id, 8)).assignee_id == kadis.id

    # the Kadis is away Tuesday to Thursday: the Sekretaris is Plh. Kepala Dinas
    appt = await appoint_plh(walk, sek, date(2024, 10, 8), date(2024, 10, 10))
    assert (await open_run(walk, cycle_id, 8)).assignee_id == kadis.id  # not yet begun
    assert any("Plh. Kepala Dinas" in x for x in await texts_to(walk, sek))
    assert any("ditunjuk sebagai Plh." in x for x in await texts_to(walk, kadis))

    # an overlapping appointment and a self-appointment are refused, nothing written
    await walk.refused(adm(lambda a: a.appoint(
        None, role=Role.KADIS, acting_id=kasubag.id, kind=ActingKind.PLH,
        starts_at=wib(2024, 10, 10), ends_at=wib(2024, 10, 12))), InvalidInput)
    with pytest.raises(InvalidInput, match="tumpang tindih"):
        await appoint_plh(walk, kasubag, date(2024, 10, 10), date(2024, 10, 11))
    with pytest.raises(InvalidInput, match="sendiri"):
        await appoint_plh(walk, kadis, date(2024, 10, 14), date(2024, 10, 15))

    # Tuesday: the deadline job moves the open signature to the Plh.
    clock.set(wib(2024, 10, 8, 7, 30))
    done = await run_deadline_tasks(walk.sm, services)
    assert done.get("acting") == 1
    run8 = await open_run(walk, cycle_id, 8)
    assert run8.id == run8_id and run8.assignee_id == sek.id
    (row, payload), = [r for r in await audit_rows(walk, "step.reassign")
                       if r[1]["run"] == run8_id]
    assert payload["from"] == kadis.id and payload["to"] == sek.id
    assert payload["reason"] == "acting.start"
    # the Kadis' old button is refused; the Plh. has the button now
    await walk.refused(lambda wf, s: wf.approve(kadis, run8_id, doc_id), NotAssignee)
    async with walk.sm() as s:
        last = (await s.execute(select(Outbox).where(Outbox.person_id == sek.id,
                                                     Outbox.kind == "task_moved")
                                .order_by(Outbox.id.desc()))).scalars().first()
    assert "Tugas dialihkan kepada Anda" in last.payload["text"]
    assert last.payload["buttons"][0][0][1] == f"sgn:{run8_id}:{doc_id}"

    # the Plh. signs: recorded as "Plh.", the Kadis is told what was done in their name
    clock.advance(minutes=90)
    run9 = await walk(lambda wf, s: wf.approve(sek, run8_id, doc_id))
    async with walk.sm() as s:
        sign = (await s.execute(select(Approval).where(
            Approval.action == ApprovalAction.SIGN))).scalar_one()
    assert sign.person_id == sek.id and sign.acting_as == "Plh."
    assert any("Plh. Contoh Sekretaris" in x and "atas nama Anda" in x and "langkah 8" in x
               for x in await texts_to(walk, kadis))

    # numbered: the final PDF prints "Plh. Kepala Dinas ..." with the Plh.'s name and NIP
    async def number(wf, s):
        letter = await wf.assign_number(staf, run9.id)
        return await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)

    final = await walk(number)
    text = flat(pdf_text(await stored_bytes(walk, final.pdf_file_id)))
    # (the block includes the statement that the PDF carries no electronic signature)
    block = text[text.index("Plh. Kepala Dinas Tenaga Kerja"):][:260]
    assert block.startswith("Plh. Kepala Dinas Tenaga Kerja dan Perindustrian Kabupaten")
    assert sek.name in block and f"NIP. {sek.nip}" in block and sek.rank in block
    assert kadis.nip not in text and kadis.name not in block

    # after the range the Kadis holds the post again and gets the next task
    clock.set(wib(2024, 10, 11, 7, 30))
    await run_deadline_tasks(walk.sm, services)
    async with walk.sm() as s:
        assert (await s.get(ActingAppointment, appt.id)).finished_at is not None
    holder = await walk(lambda wf, s: wf.holder_for(kadis.office_id, wf.sop.step(8)))
    assert holder.id == kadis.id
    assert [p for _, p in await audit_rows(walk, "acting.end")][0]["appointment"] == appt.id


async def test_open_tasks_go_back_to_the_kadis_when_the_range_ends(walk, clock, services):
    kadis, sek = await walk.who(Role.KADIS), await walk.who(Role.SEKRETARIS)
    cycle_id, run8_id, doc_id = await to_signature(walk)
    # appointed today: the open signature moves at once
    await appoint_plh(walk, sek, date(2024, 10, 7), date(2024, 10, 9))
    assert (await open_run(walk, cycle_id, 8)).assignee_id == sek.id
    # Thursday: the range is over, the deadline job gives the signature back
    clock.set(wib(2024, 10, 10, 8, 0))
    assert (await run_deadline_tasks(walk.sm, services)).get("acting") == 1
    assert (await open_run(walk, cycle_id, 8)).assignee_id == kadis.id
    await walk.refused(lambda wf, s: wf.approve(sek, run8_id, doc_id), NotAllowed)
    assert any("kembali" in x.lower() or "berakhir" in x for x in await texts_to(walk, sek))
    await walk(lambda wf, s: wf.approve(kadis, run8_id, doc_id))
    async with walk.sm() as s:
        sign = (await s.execute(select(Approval).where(
            Approval.action == ApprovalAction.SIGN))).scalar_one()
    assert sign.person_id == kadis.id and sign.acting_as == ""
    # a second sync changes nothing
    async with walk.sm() as s, s.begin():
        assert await sync_acting(s, services) == 0


async def test_a_plh_kabid_enters_the_data_of_the_bidang(walk, clock):
    cycle_id, _ = await to_collection(walk)
    kabid = await walk.who(Role.KABID, "IND")
    other = await walk.who(Role.KABID, "PPTK")
    ind = await walk.unit_id("IND")
    await appoint_plh(walk, other, date(2024, 10, 7), date(2024, 10, 8), role=Role.KABID,
                      unit_id=ind)
    run = await open_run(walk, cycle_id, 4, "IND")
    assert run.assignee_id == other.id
    async with walk.sm() as s:
        items = (await s.execute(select(Submission))).scalars().all()
    assert not items
    # the Plh. (a Kabid of another bidang) answers and submits for Perindustrian
    from models import CycleIndicator

    async with walk.sm() as s:
        items = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.unit_id == ind))).scalars().all()
    for item in items:
        await walk(lambda wf, s, item=item: wf.record_answer(
            other, run.id, item.id, raw_text="5", value=5))
    await walk.refused(lambda wf, s: wf.submit_unit(kabid, run.id), NotAllowed)
    await walk(lambda wf, s: wf.submit_unit(other, run.id))
    assert any("Plh." in x and "atas nama Anda" in x for x in await texts_to(walk, kabid))


async def test_deactivating_a_kabid_moves_the_open_data_entry_to_the_chosen_person(walk):
    cycle_id, _ = await to_collection(walk)
    kabid, staf = await walk.who(Role.KABID, "PPTK"), await walk.who(Role.STAF, "PPTK")
    kasubag = await walk.who(Role.KASUBAG)
    admin = await walk(adm(lambda a: a.add_person(
        None, name="Admin Kantor", role=Role.ADMIN)))
    run = await open_run(walk, cycle_id, 4, "PPTK")
    from models import CycleIndicator

    async with walk.sm() as s:
        items = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.cycle_id == cycle_id, CycleIndicator.unit_id == run.unit_id)
            .order_by(CycleIndicator.position))).scalars().all()
    # the Kabid answered the first indicator before going
    await walk(lambda wf, s: wf.record_answer(kabid, run.id, items[0].id, raw_text="80",
                                              value=80))
    # only the admin manages people; the default successor is the first who may hold the
    # bidang's data entry: its staf (the superior, the Kasubag, may not)
    with pytest.raises(NotAllowed):
        await walk(adm(lambda a: a.deactivate(kasubag, kabid.id)))
    default = await walk(adm(lambda a: a.default_successor(kabid)))
    assert default.id == staf.id

    result = await walk(adm(lambda a: a.deactivate(admin, kabid.id, successor_id=staf.id,
                                                   reason="pensiun")))
    assert [r.id for r in result.runs] == [run.id] and result.successor.id == staf.id
    gone = await fresh(walk, kabid)
    assert not gone.active and gone.telegram_user_id is None
    assert (await open_run(walk, cycle_id, 4, "PPTK")).assignee_id == staf.id

    # the audit trail shows who moved what
    (row, payload), = await audit_rows(walk, "step.reassign")
    assert row.actor_id == admin.id and payload["from"] == kabid.id
    assert payload["to"] == staf.id and payload["run"] == run.id
    assert payload["reason"] == "deactivate"
    (row, payload), = await audit_rows(walk, "person.deactivate")
    assert row.actor_id == admin.id and payload["reason"] == "pensiun"
    assert payload["successor"] == staf.id
    assert any("Tugas dialihkan kepada Anda" in x for x in await texts_to(walk, staf))

    # the old Kabid's buttons are refused
    await walk.refused(lambda wf, s: wf.record_answer(gone, run.id, items[1].id,
                                                      raw_text="1", value=1), NotAllowed)
    await walk.refused(lambda wf, s: wf.submit_unit(gone, run.id), NotAllowed)

    # the chosen person finishes the data entry and sends it
    for item in items[1:]:
        await walk(lambda wf, s, item=item: wf.record_answer(
            staf, run.id, item.id, raw_text="7", value=7))
    await walk(lambda wf, s: wf.submit_unit(staf, run.id))
    async with walk.sm() as s:
        done = await s.get(StepRun, run.id)
        first = (await s.execute(select(Submission).where(
            Submission.indicator_id == items[0].indicator_id))).scalar_one()
    assert done.status == StepStatus.DONE and done.completed_by_id == staf.id
    assert first.person_id == kabid.id  # earlier answers stay attributed to the Kabid


async def test_reassigning_a_step_and_an_indicator(walk):
    cycle_id, _ = await to_collection(walk)
    kasubag, sek = await walk.who(Role.KASUBAG), await walk.who(Role.SEKRETARIS)
    kabid, staf = await walk.who(Role.KABID, "IND"), await walk.who(Role.STAF, "IND")
    staf_pptk = await walk.who(Role.STAF, "PPTK")
    run = await open_run(walk, cycle_id, 4, "IND")
    # a Kabid cannot; the Kasubag can within data collection
    await walk.refused(adm(lambda a: a.reassign_run(kabid, run.id, staf.id)), NotAllowed)
    await walk(adm(lambda a: a.reassign_run(kasubag, run.id, staf.id, "Kabid dinas luar")))
    assert (await open_run(walk, cycle_id, 4, "IND")).assignee_id == staf.id
    async with walk.sm() as s:
        last = (await s.execute(select(Outbox).where(Outbox.person_id == staf.id,
                                                     Outbox.kind == "task_moved")
                                .order_by(Outbox.id.desc()))).scalars().first()
    assert last.payload["buttons"] == [[["Mulai isi data", f"ent:{run.id}"]]] or \
        last.payload["buttons"][0][0][1] == f"ent:{run.id}"
    assert any("kini dipegang" in x for x in await texts_to(walk, kabid))
    # the Sekretaris gives it back to the Kabid
    await walk(adm(lambda a: a.reassign_run(sek, run.id, kabid.id)))
    # an indicator: to a staf of its bidang only
    from models import CycleIndicator

    async with walk.sm() as s:
        item = (await s.execute(select(CycleIndicator).where(
            CycleIndicator.unit_id == run.unit_id))).scalars().first()
    await walk.refused(adm(lambda a: a.reassign_item(kasubag, item.id, staf_pptk.id)),
                       InvalidInput)
    await walk(adm(lambda a: a.reassign_item(kasubag, item.id, staf.id)))
    async with walk.sm() as s:
        assert (await s.get(CycleIndicator, item.id)).assigned_to_id == staf.id
    # a step that is done cannot be reassigned
    async with walk.sm() as s:
        run2 = (await s.execute(select(StepRun).where(StepRun.cycle_id == cycle_id,
                                                      StepRun.step_no == 2))).scalar_one()
    await walk.refused(adm(lambda a: a.reassign_run(sek, run2.id, kasubag.id)))


async def test_changing_role_moves_what_no_longer_fits_and_the_roster(walk):
    cycle_id, _ = await to_collection(walk)
    kabid = await walk.who(Role.KABID, "IND")
    kasubag = await walk.who(Role.KASUBAG)
    run = await open_run(walk, cycle_id, 4, "IND")
    # the Kabid Perindustrian moves to Bidang HIJS: the IND data goes to the default holder
    with pytest.raises(InvalidInput):  # nobody else holds Kabid IND: a successor is needed
        await walk(adm(lambda a: a.change_person(None, kabid.id, unit_code="HIJS")))
    # the Kasubag may not hold a bidang's data entry; a staf of the bidang may
    await walk.refused(adm(lambda a: a.change_person(
        None, kabid.id, unit_code="HIJS", successor_id=kasubag.id)), InvalidInput)
    staf = await walk.who(Role.STAF, "IND")
    person, moved = await walk(adm(lambda a: a.change_person(
        None, kabid.id, unit_code="HIJS", successor_id=staf.id)))
    assert [r.id for r in moved] == [run.id]
    assert (await open_run(walk, cycle_id, 4, "IND")).assignee_id == staf.id
    sek = await walk.who(Role.SEKRETARIS)
    await appoint_plh(walk, sek, date(2024, 10, 7), date(2024, 10, 9))
    text = await walk(adm(lambda a: a.roster_text(sek)))
    assert "Sekretariat" in text and "Bidang Perindustrian" in text
    assert "sedang menjadi Plh. Kepala Dinas" in text and "berhalangan; Plh.: Contoh Sekretaris" in text
    assert "belum terdaftar" in text
    staf = await walk.who(Role.STAF, "IND")
    await walk.refused(adm(lambda a: a.roster_text(staf)), NotAllowed)


def test_the_command_line_adds_changes_appoints_and_deactivates(
        tmp_path, db_url, engine, office, capsys):
    from bot.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n[storage]\npath = "{tmp_path / "f"}"\n')
    run = lambda *a: main(["--config", str(cfg), "people", *a])  # noqa: E731
    assert run("add", "--name", "Admin Dinas", "--role", "admin") == 0
    assert "Pegawai ditambahkan: Admin Dinas (admin)" in capsys.readouterr().out
    assert run("add", "--name", "Staf Baru, A.Md.", "--role", "staf", "--unit", "IND",
               "--nip", "199905052022031012") == 0
    assert run("add", "--name", "Tanpa Bidang", "--role", "staf") == 1
    assert "harus ditempatkan" in capsys.readouterr().err
    assert run("change", "--nip", "199905052022031012", "--unit", "PPTK") == 0
    assert run("appoint", "--role", "kadis", "--acting-nip", "197002021995031002",
               "--from", "2099-10-08", "--to", "2099-10-10", "--decree", "800/1/SP/2099") == 0
    out = capsys.readouterr().out
    assert "Plh. Kepala Dinas Tenaga Kerja" in out and "8 Oktober 2099 s.d. 10 Oktober 2099" in out
    assert run("appoint", "--role", "kadis", "--acting-nip", "198003032005012003",
               "--from", "2099-10-09", "--to", "2099-10-09") == 1
    assert "tumpang tindih" in capsys.readouterr().err
    assert run("deactivate", "--nip", "199905052022031012", "--reason", "mutasi") == 0
    assert "dinonaktifkan (mutasi)" in capsys.readouterr().out
    assert run("deactivate", "--nip", "199905052022031012") == 1
    assert run("appoint", "--cancel", "1") == 0


async def test_a_plh_kadis_gets_the_quarterly_prompt_starts_the_cycle_and_escalations(
        walk, clock, services):
    from bot.core.reminders import quarterly_prompt, sweep

    sek, kadis = await walk.who(Role.SEKRETARIS), await walk.who(Role.KADIS)
    kasubag = await walk.who(Role.KASUBAG)
    # the Sekretaris is Plh. Kepala Dinas from Monday 7 to Wednesday 9 October 2024
    await appoint_plh(walk, sek, date(2024, 10, 7), date(2024, 10, 9), actor=kadis)
    clock.set(wib(2024, 10, 7, 8, 0))
    async with walk.sm() as s, s.begin():
        assert await quarterly_prompt(s, services) == 2  # the Kadis and the Plh.
    assert any("Triwulan III" in text for text in await texts_to(walk, sek))
    # the Plh. starts the cycle in the Kadis' place; the Kasubag is not allowed to
    await walk.refused(lambda wf, s: wf.start_cycle(kasubag, CycleKind.QUARTERLY, 2024, 3),
                       NotAllowed)
    cycle = await walk(lambda wf, s: wf.start_cycle(sek, CycleKind.QUARTERLY, 2024, 3, "Mulai"))
    assert cycle.started_by_id == sek.id
    # a Sekretaris step overdue escalates to whoever holds the Kadis' post: the Plh.
    # (here the Plh. is the Sekretaris, so it is the holder; the Kadis gets nothing)
    clock.set(wib(2024, 10, 8, 9, 0))
    async with walk.sm() as s, s.begin():
        kinds = [r.kind for r in await sweep(s, services)]
    assert "due" in kinds and "overdue" in kinds
    assert not any("terlambat" in text for text in await texts_to(walk, kadis))

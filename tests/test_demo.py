"""The main job: `sopbot demo` plays a whole cycle over the emulator and exits 0."""
from __future__ import annotations

import zipfile

from pypdf import PdfReader
from sqlalchemy import select

from bot.cli import main
from models import Cycle, Delivery, Submission
from models.enums import CycleStatus, DeliveryStatus


def test_demo_runs_a_full_cycle_twice_from_a_clean_folder(tmp_path, capsys, monkeypatch):
    # as the README says: `sopbot demo` in a folder, with its default (relative) output
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sopbot-demo"
    assert main(["demo"]) == 0
    first = capsys.readouterr().out
    assert "11/11" in first and "Lini waktu" in first and "Selesai dalam" in first
    for name in ("dokumen/Pengukuran-Kinerja-2024-TW3-final.xlsx",
                 "dokumen/Pengukuran-Kinerja-2024-TW3-final.pdf",
                 "dokumen/Pengukuran-Kinerja-2024-TW3-final.png",
                 "arsip-siklus-1.zip", "buku-agenda.xlsx"):
        assert (out / name).stat().st_size > 0, name
    text = "".join(p.extract_text() for p in PdfReader(out / "dokumen/Pengukuran-Kinerja-2024-TW3-final.pdf").pages)
    assert "050/1/II.08/2024" in text and "DATA CONTOH" in text
    # a table cell may wrap the name over two lines
    assert "Tingkat Pengangguran Terbuka" in " ".join(text.split())
    with zipfile.ZipFile(out / "arsip-siklus-1.zip") as z:
        assert "MANIFEST.txt" in z.namelist()
    # the timeline shows the returned bidang
    assert "dikembalikan" in first

    import asyncio

    from models.session import make_engine, make_sessionmaker

    async def check():
        engine = make_engine(f"sqlite:///{out / 'sopbot-demo.db'}")
        async with make_sessionmaker(engine)() as s:
            cycle = (await s.execute(select(Cycle))).scalar_one()
            deliveries = (await s.execute(select(Delivery))).scalars().all()
            revisions = (await s.execute(select(Submission))).scalars().all()
        await engine.dispose()
        return cycle, deliveries, revisions

    cycle, deliveries, revisions = asyncio.run(check())
    assert cycle.status == CycleStatus.CLOSED
    assert [d.status for d in deliveries] == [DeliveryStatus.RECEIVED] * 3
    assert len(revisions) == 22  # 21 indicators + one correction after the return

    # the commands it prints work on what it made, as printed
    commands = [line.split()[1:] for line in first.splitlines()
                if line.strip().startswith("sopbot --config ")]
    assert [c[2:4] for c in commands][:3] == [["verify", commands[0][3]], ["verify", str(
        out / "dokumen/Pengukuran-Kinerja-2024-TW3-final.pdf")], ["audit", "verify"]]
    for command in commands[:3]:
        assert main(command) == 0, command
    printed = capsys.readouterr().out
    assert printed.count("HASIL: ASLI") == 1 and "jejak audit utuh" in printed

    # a second run starts clean
    assert main(["demo", "--out", str(out)]) == 0
    assert "11/11" in capsys.readouterr().out
    cycle, _, revisions = asyncio.run(check())
    assert cycle.id == 1 and len(revisions) == 22


def test_demo_plays_three_offices_at_once(tmp_path, capsys):
    """`sopbot demo --offices 3`: three offices (WIB, WITA, WIT), each with its own
    people, play their cycles concurrently on one bot; each ends with a signed,
    numbered final document of its own, its number counted from 1 in that office."""
    import asyncio

    from models import LetterNumber, Office, Person
    from models.session import make_engine, make_sessionmaker

    out = tmp_path / "tiga"
    assert main(["demo", "--offices", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("11/11") == 3 and "Selesai dalam" in printed

    async def check():
        engine = make_engine(f"sqlite:///{out / 'sopbot-demo.db'}")
        async with make_sessionmaker(engine)() as s:
            offices = (await s.execute(select(Office).order_by(Office.id))).scalars().all()
            cycles = (await s.execute(select(Cycle))).scalars().all()
            numbers = (await s.execute(select(LetterNumber))).scalars().all()
            accounts = (await s.execute(select(Person.office_id, Person.telegram_user_id)
                                        )).all()
        await engine.dispose()
        return offices, cycles, numbers, accounts

    offices, cycles, numbers, accounts = asyncio.run(check())
    assert [(o.unit_code, (o.settings or {}).get("calendar", {}).get("timezone"))
            for o in offices] == [("II.08", None), ("II.09", "Asia/Makassar"),
                                  ("II.10", "Asia/Jayapura")]
    # each office's own people, each on an account of their own
    ids = [tg for _, tg in accounts]
    assert None not in ids and len(set(ids)) == len(ids)
    assert {o for o, _ in accounts} == {o.id for o in offices}
    # one closed cycle and one letter number per office, each the office's first
    assert sorted(c.office_id for c in cycles) == [o.id for o in offices]
    assert all(c.status == CycleStatus.CLOSED for c in cycles)
    by_office = {n.office_id: n for n in numbers}
    assert len(numbers) == 3 and set(by_office) == {o.id for o in offices}
    cycle_office = {c.id: c.office_id for c in cycles}
    for o in offices:
        n = by_office[o.id]
        assert n.sequence == 1 and n.number == f"050/1/{o.unit_code}/2024"
        assert cycle_office[n.cycle_id] == o.id
        pdf = out / f"kantor-{o.unit_code}/dokumen/Pengukuran-Kinerja-2024-TW3-final.pdf"
        text = " ".join("".join(p.extract_text() for p in PdfReader(pdf).pages).split())
        assert n.number in text and o.name in text, o.unit_code
        assert f"surat nomor {n.number}" in printed
        for other in offices:  # not another office's number
            if other.id != o.id:
                assert f"/{other.unit_code}/" not in text

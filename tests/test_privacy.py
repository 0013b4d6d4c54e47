"""Secrets and privacy: NIPs and evidence files never reach a chat; the token never
reaches a log."""
from __future__ import annotations

import logging
import re

from bot.scenario import png
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.test_e2e_data_entry import answer, press_and_wait, to_collection

NIP = re.compile(r"(?<!\d)\d{18}(?!\d)")


async def test_no_nip_and_no_evidence_file_in_any_chat_and_no_token_in_logs(
        harness, people, sessionmaker, caplog):
    caplog.set_level(logging.DEBUG)
    await to_collection(harness, sessionmaker, units=("PPTK",))
    kabid = people.user(Role.KABID, "PPTK")
    request = await kabid.wait_for(text_contains="Permintaan data kinerja")
    card = await press_and_wait(kabid, request, "Mulai isi data", "Indikator 1 dari")
    card = await answer(kabid, card, "4,2")
    photo = png(50, 40)
    sent = await kabid.send_photo(photo)
    await kabid.wait_for(after=sent, text_contains="Bukti diterima")
    kasubag = people.user(Role.KASUBAG)
    sent = await kasubag.send_command("/status")
    board = await kasubag.wait_for(after=sent, text_contains="Siklus")
    await press_and_wait(kasubag, board, "Lihat data Bidang Pelatihan", "Data Bidang")
    for user in people.h.users.values():
        for command in ("/tugas", "/bantuan"):
            sent = await user.send_command(command)
            await user.wait_for(after=sent)
    await harness.settle()
    texts = [m.text or m.caption or "" for u in harness.emulator.users for m in u.messages]
    assert texts and not [t for t in texts if NIP.search(t)]
    sent_files = [f.data for u in harness.emulator.users for f in harness.emulator.sent_files(u.chat_id)]
    assert photo not in sent_files
    token = harness.app.bot.token
    assert not [r for r in caplog.records if token in r.getMessage()]

"""A clean chat (issue 13, items 7, 8 and 10), through the emulator as people act:
no visible button is refused after a step, the Kadis's sign request shows the summary
and the chart before the buttons (the PDF and workbook follow), one message per receipt."""
from __future__ import annotations

from models.enums import Role
from tests.e2e import FIVE_ROLES, People, harness, people  # noqa: F401  (fixtures)
from tests.test_documents_service import drive_to_compile
from tests.test_e2e_signoff import has_button, png
from tests.test_workflow import Walk

STALE = "Tombol ini sudah tidak berlaku."


async def refused_buttons(harness, users) -> list[tuple[str, str, str]]:
    """Press every visible inline button in these chats; those refused (an alert or the
    stale-button notice) as (person, label, answer). Pressing may act: call it last."""
    visible = [(u, m.message_id, b) for u in users for m in u.messages
               if not m.deleted for b in m.buttons if b.get("callback_data")]
    refused = []
    for user, message_id, b in visible:
        if not any(x.get("callback_data") == b["callback_data"]
                   for x in user.message(message_id).buttons):
            continue  # gone meanwhile
        q = await user.press(message_id, data=b["callback_data"])
        answer = await user.wait_for_answer(q)
        await harness.settle()
        if answer.show_alert or answer.text == STALE:
            refused.append((user.first_name, b.get("text"), answer.text))
    return refused


async def new_messages(harness, user, since: int):
    await harness.settle()
    return [m for m in user.messages if m.message_id > since]


async def test_sign_request_receipts_and_no_dead_buttons(harness, sessionmaker, services, clock):
    people = await People(harness).load(*FIVE_ROLES, (Role.CONTACT, None))
    kasubag, sek, kadis = (people.user(Role.KASUBAG), people.user(Role.SEKRETARIS),
                           people.user(Role.KADIS))
    staf, contact = people.user(Role.STAF, "SEK"), people.user(Role.CONTACT)
    await drive_to_compile(Walk(sessionmaker, services, clock))
    await harness.sender.drain()

    async def submit_and_paraf(card, version: int) -> None:
        q = await kasubag.press(card, text="Susun dokumen")
        ready = await kasubag.wait_for(after=q, predicate=has_button("Ajukan untuk paraf"),
                                       timeout=30)
        q = await kasubag.press(ready, text="Ajukan untuk paraf")
        await kasubag.wait_for(after=q, text_contains="diajukan kepada")
        card7 = await sek.wait_for(
            predicate=lambda m: has_button("Paraf")(m) and f"versi {version}" in m.content)
        q = await sek.press(card7, text="Paraf")
        await sek.wait_for(after=q, text_contains="Diparaf oleh")

    card = await kasubag.wait_for(predicate=has_button("Susun dokumen"))
    await submit_and_paraf(card, 1)

    # the Kadis's sign request: the chart, the summary, then the buttons; files after
    request = await kadis.wait_for(predicate=has_button("Tandatangani"))
    await harness.settle()
    chart = [m for m in kadis.messages if m.photo]
    assert chart and chart[0].message_id <= request.message_id
    assert "Capaian per bidang" in request.content
    assert "Belum mencapai target" in request.content
    assert "Bidang Pelatihan dan Penempatan Tenaga Kerja" in request.content
    assert len(request.content) <= (1024 if request.photo else 4096)
    if not request.photo:  # longer than a caption: the chart came just before, alone
        assert chart[-1].message_id < request.message_id
    docs = [m for m in kadis.messages if m.document is not None]
    names = sorted(m.document["file_name"].rsplit(".", 1)[1] for m in docs)
    assert names == ["pdf", "xlsx"]
    assert all(m.message_id > request.message_id for m in docs)

    # he returns version 1; version 2 says what changed since
    q = await kadis.press(request, text="Kembalikan")
    ask = await kadis.wait_for(after=q, text_contains="alasan pengembalian")
    sent = await kadis.reply_to(ask, 'Periksa <judul> & "tabel" 📊')
    await kadis.wait_for(after=sent, text_contains="dikembalikan kepada")
    returned = await kasubag.wait_for(predicate=lambda m: has_button("Susun dokumen")(m)
                                      and "judul" in m.content)
    await submit_and_paraf(returned, 2)
    request2 = await kadis.wait_for(
        predicate=lambda m: has_button("Tandatangani")(m) and "versi 2" in m.content)
    assert "Perubahan sejak versi 1 yang Anda kembalikan" in request2.content
    # the returned version's card has no buttons left
    assert not kadis.message(request.message_id).buttons
    q = await kadis.press(request2, text="Tandatangani")
    await kadis.wait_for(after=q, text_contains="Ditandatangani oleh")

    # steps 9-10, then the receipts: one message each to the staf
    card9 = await staf.wait_for(predicate=has_button("Beri nomor"))
    q = await staf.press(card9, text="Beri nomor")
    await staf.wait_for(after=q, text_contains="diberi nomor")
    card10 = await kasubag.wait_for(predicate=has_button("Periksa & arsipkan"))
    q = await kasubag.press(card10, text="Periksa & arsipkan")
    await kasubag.wait_for(after=q, text_contains="diarsipkan")
    task = await staf.wait_for(predicate=has_button("Catat penyampaian"))
    q = await staf.press(task, text="Catat penyampaian")
    board = await staf.wait_for(after=q, predicate=has_button("Bappeda"))
    q = await staf.press(board, text="Bappeda")
    await staf.wait_for(after=q, text_contains="Dokumen dikirim kepada")
    request = await contact.wait_for(predicate=has_button("Konfirmasi terima"))
    last = staf.messages[-1].message_id
    q = await contact.press(request, text="Konfirmasi terima")
    await contact.wait_for(after=q, text_contains="Penerimaan dikonfirmasi")
    got = await new_messages(harness, staf, last)
    assert len(got) == 1, [m.content for m in got]
    assert got[0].document is not None and "Tanda terima dari Bappeda" in got[0].content

    board = next(m for m in reversed(staf.messages) if has_button("Inspektorat")(m))
    q = await staf.press(board, text="Inspektorat")
    await staf.wait_for(after=q, text_contains="kirim foto tanda terima")
    sent = await staf.send_photo(png(), caption="Budi & <Santoso> \"TU\"")
    receipt = await staf.wait_for(after=sent, text_contains="diterima oleh Budi")
    got = await new_messages(harness, staf, sent["message_id"])
    assert [m.message_id for m in got] == [receipt.message_id]
    assert receipt.document is not None and "Organisasi" in receipt.button_texts[0]

    # nothing left on screen that the bot would refuse
    users = [kadis, sek, kasubag, staf, contact, people.user(Role.KABID, "PPTK")]
    assert await refused_buttons(harness, users) == []


async def test_a_retired_message_loses_its_buttons_and_one_not_sent_is_dropped(
        harness, people, sessionmaker, clock):
    """A card's buttons go when what they act on is done; a message that no longer
    applies when its turn comes is not sent at all (the staf's "selesai" after the
    Kabid has sent the data)."""
    from bot.core.outbox import enqueue, retire
    from models import Person

    kabid = people.user(Role.KABID, "PPTK")
    async with sessionmaker() as s, s.begin():
        p = await s.get(Person, people.person(Role.KABID, "PPTK").id)
        await enqueue(s, p, "data_request", "Permintaan data <b>Bidang \"P&amp;P\"</b> 📊",
                      [[("Mulai isi data", "ent:999")]], at=clock.now(), ref="run:999")
    await harness.sender.drain()
    card = await kabid.wait_for(predicate=has_button("Mulai isi data"))
    last = kabid.messages[-1].message_id
    async with sessionmaker() as s, s.begin():
        p = await s.get(Person, people.person(Role.KABID, "PPTK").id)
        await enqueue(s, p, "staff_done", "Staf selesai mengisi 1 indikator",
                      [[("Lanjutkan", "ent:999")]], at=clock.now(), ref="run:999")
        await retire(s, "run:999", at=clock.now())  # the Kabid sent the data meanwhile
    await harness.sender.drain()
    await harness.settle()
    assert not kabid.message(card.message_id).buttons
    assert "Permintaan data" in kabid.message(card.message_id).content
    assert [m for m in kabid.messages if m.message_id > last] == []

"""The regency admin (issue 16, item 5): /kantor lists the regency's offices and adds
one; anybody else, a Kadis too, is refused with a clear message and changes nothing."""
from __future__ import annotations

from sqlalchemy import select

from bot.texts import t
from models import Office
from models.enums import Role
from tests.e2e import harness, people  # noqa: F401  (fixtures)
from tests.helpers import snapshot


async def test_kantor_is_refused_for_a_kadis_and_lists_for_the_regency_admin(
        harness, people, services, sessionmaker):
    from tests.test_authorization import plain

    kadis = people.user(Role.KADIS)
    async with sessionmaker() as s:
        before = await snapshot(s)
    for args in ((), ("tambah", "II.09", "WIB", "Dinas", "Kesehatan")):
        sent = await kadis.send_command("/kantor", *args)
        refusal = await kadis.wait_for(after=sent)
        assert plain(refusal.text) == plain(t("k.refused", user_id=kadis.user_id))
        assert "admin kabupaten" in refusal.text and str(kadis.user_id) in refusal.text
    await harness.settle()
    async with sessionmaker() as s:
        after = await snapshot(s)
    for table in ("outbox", "conversation"):
        after.pop(table, None), before.pop(table, None)
    assert after == before

    # the regency admin: an account of no office, listed in [regency] admins
    admin = harness.emulator.add_user(user_id=990_001, first_name="Admin Kabupaten")
    services.config.regency.admins = [admin.user_id]
    sent = await admin.send_command("/kantor")
    listing = await admin.wait_for(after=sent)
    async with sessionmaker() as s:
        office = (await s.execute(select(Office))).scalar_one()
    assert office.name in listing.text and f"Kode unit {office.unit_code}" in listing.text
    # 7 of the example office's 12 people registered by the fixture; no cycle yet
    assert "pegawai terdaftar 7 dari 12" in listing.text
    assert "siklus berjalan 0" in listing.text

    sent = await admin.send_command("/kantor", "tambah", "II.09", "wita", "Dinas", "Kesehatan")
    added = await admin.wait_for(after=sent)
    assert "Kantor ditambahkan" in added.text and "WITA" in added.text
    sent = await admin.send_command("/kantor", "tambah", "II.09", "WIB", "Lagi")
    again = await admin.wait_for(after=sent)
    assert "sudah dipakai" in again.text
    sent = await admin.send_command("/kantor")
    listing = await admin.wait_for(after=sent)
    assert "Dinas Kesehatan" in listing.text and "Kode unit II.09 · WITA" in listing.text
    assert "(2 kantor)" in listing.text
    async with sessionmaker() as s:
        codes = (await s.execute(select(Office.unit_code).order_by(Office.id))).scalars().all()
    assert codes == [office.unit_code, "II.09"]

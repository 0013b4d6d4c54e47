"""The audit trail detects truncation and rewriting (issue 11, point 10): a cut-off tail,
a deleted head, a rewrite with every later hash recomputed (caught by a head printed
earlier, ``--expect-head``), and with ``SOPBOT_AUDIT_KEY`` a chain recomputed without
the key; the final PDF and the archive manifest carry the head."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import zipfile

import pytest
from sqlalchemy import select, text, update

from bot.core import audit
from bot.core.audit import GENESIS, KEY_ENV, AuditKeyError, current_head, row_hash, verify
from bot.cli import main
from bot.core.workflow import Workflow
from models import AuditHead, AuditLog
from models.enums import CycleKind, Role
from tests.helpers import person
from tests.test_documents_service import walk  # noqa: F401  (fixture)

KEY = "kunci-rahasia Dinas <&> \u00e9\U0001F512"


async def _history(sessionmaker, services, note: str = 'Mulai "TW III" <segera> & 😀',
                   quarter: int = 3):
    async with sessionmaker() as s, s.begin():
        kadis = await person(s, Role.KADIS)
        sek = await person(s, Role.SEKRETARIS)
        wf = Workflow(s, services)
        cycle = await wf.start_cycle(kadis, CycleKind.QUARTERLY, 2024, quarter, note)
        run = (await wf.current_steps(cycle.id))[0]
        await wf.forward_disposition(sek, run.id, "Teruskan ke Kasubag Perencanaan.")


async def _rows(sessionmaker) -> list[AuditLog]:
    async with sessionmaker() as s:
        return list((await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars())


async def _rechain(sessionmaker, *, key: bytes | None = None, from_id: int = 0,
                   head_mode: str | None = None) -> None:
    """What an attacker with database access does: recompute every hash after a
    rewrite (with ``key``, or plain SHA-256 when the key is unknown) and the head."""
    async with sessionmaker() as s, s.begin():
        rows = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
        prev = GENESIS
        for row in rows:
            if row.id >= from_id:
                row.prev_hash = prev
                row.hash = row_hash(prev, row.created_at, row.actor_id, row.cycle_id,
                                    row.action, row.payload, key)
            prev = row.hash
        head = await s.get(AuditHead, 1)
        head.last_hash, head.count = prev, len(rows)
        if head_mode is not None:
            head.mode = head_mode
            head.keyed_from = None if head_mode == audit.PLAIN else head.keyed_from


def _cli(tmp_path, db_url, *args) -> int:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n')
    return main(["--config", str(cfg), "audit", "verify", *args])


async def test_deleted_last_rows_are_reported_as_a_cut_off_tail(sessionmaker, services, office,
                                                                 tmp_path, db_url, capsys):
    await _history(sessionmaker, services)
    rows = await _rows(sessionmaker)
    async with sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM audit_log WHERE id >= :i"), {"i": rows[-2].id})
    async with sessionmaker() as s:
        result = await verify(s)
    assert not result.ok and result.rows == len(rows) - 2
    assert any("rantai dipotong" in p for p in result.problems)
    assert any(f"jumlah baris {len(rows) - 2}, seharusnya {len(rows)}" in p
               for p in result.problems)
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 1
    assert "rantai dipotong" in capsys.readouterr().err


async def test_a_deleted_head_is_reported(sessionmaker, services, office, tmp_path, db_url,
                                          capsys):
    await _history(sessionmaker, services)
    async with sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM audit_head"))
    async with sessionmaker() as s:
        result = await verify(s)
    assert not result.ok
    assert any("kepala rantai (audit_head) tidak ada" in p for p in result.problems)
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 1
    assert "kepala dihapus" in capsys.readouterr().err
    # an empty trail without a head is fine (a new database)
    async with sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM audit_log"))
    async with sessionmaker() as s:
        assert (await verify(s)).ok


async def test_a_rewrite_with_recomputed_hashes_is_caught_by_an_old_head(
        sessionmaker, services, office, tmp_path, db_url, capsys):
    await _history(sessionmaker, services)
    async with sessionmaker() as s:
        old = await current_head(s)  # as printed on the final PDF / MANIFEST.txt
    await _history(sessionmaker, services, note="Siklus kedua", quarter=2)  # later rows
    assert await asyncio.to_thread(_cli, tmp_path, db_url, "--expect-head", old.hash) == 0
    out = capsys.readouterr().out
    assert f"Kepala {old.hash} ada di rantai" in out and "OK:" in out

    # the attacker rewrites the Kadis's first instruction and recomputes every later hash
    rows = await _rows(sessionmaker)
    old_at = next(i for i, r in enumerate(rows) if r.hash == old.hash)
    middle = rows[1]  # a row before the old head, not the first
    assert 1 < old_at < len(rows) - 1
    forged = {**json.loads(middle.payload), "catatan": "diubah kemudian"}
    async with sessionmaker() as s, s.begin():
        await s.execute(update(AuditLog).where(AuditLog.id == middle.id)
                        .values(payload=audit._canonical(forged)))
    await _rechain(sessionmaker, from_id=middle.id)
    async with sessionmaker() as s:
        assert (await verify(s)).ok  # the chain alone cannot tell...
        result = await verify(s, expect_head=old.hash)  # ...the old head can
    assert not result.ok and result.expected_at is None
    assert any(f"kepala {old.hash} tidak ada di rantai" in p for p in result.problems)
    assert await asyncio.to_thread(_cli, tmp_path, db_url, "--expect-head", old.hash.upper()) == 1
    assert "ditulis ulang atau dipotong" in capsys.readouterr().err
    # a malformed hash is refused with the expected format
    assert await asyncio.to_thread(_cli, tmp_path, db_url, "--expect-head", "abc123") == 2
    assert "64 karakter heksadesimal" in capsys.readouterr().err


async def test_a_keyed_chain_cannot_be_recomputed_without_the_key(
        sessionmaker, services, office, tmp_path, db_url, monkeypatch, capsys):
    await _history(sessionmaker, services)  # plain rows first: the key comes later
    plain_rows = len(await _rows(sessionmaker))
    monkeypatch.setenv(KEY_ENV, KEY)
    await _history(sessionmaker, services, note="Dengan kunci", quarter=2)
    async with sessionmaker() as s:
        head = await s.get(AuditHead, 1)
        assert head.mode == audit.KEYED and head.key_id == audit.key_id(KEY.encode())
        rows = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
        assert head.keyed_from == rows[plain_rows].id
        keyed = rows[plain_rows]
        assert keyed.hash != row_hash(keyed.prev_hash, keyed.created_at, keyed.actor_id,
                                      keyed.cycle_id, keyed.action, keyed.payload)
        assert (await verify(s, key=KEY.encode())).ok
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 0
    assert "HMAC-SHA256" in capsys.readouterr().out

    # without the key: linked rows, but their hashes cannot be checked (and it says so)
    monkeypatch.delenv(KEY_ENV)
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 3
    out = capsys.readouterr().out
    assert "BELUM PASTI" in out and KEY_ENV in out
    # ...and nothing can be appended without it
    with pytest.raises(AuditKeyError, match=KEY_ENV):
        await _history(sessionmaker, services, note="Tanpa kunci", quarter=1)
    # a wrong key neither
    monkeypatch.setenv(KEY_ENV, "kunci lain")
    with pytest.raises(AuditKeyError, match="bukan kunci jejak audit"):
        await _history(sessionmaker, services, note="Kunci lain", quarter=1)
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 1
    assert "bukan kunci rantai ini" in capsys.readouterr().err
    monkeypatch.setenv(KEY_ENV, KEY)

    # an attacker without the key rewrites a row and recomputes the chain in plain SHA-256
    middle = next(r for r in rows if "TW III" in r.payload)
    async with sessionmaker() as s, s.begin():
        await s.execute(update(AuditLog).where(AuditLog.id == middle.id)
                        .values(payload=middle.payload.replace("TW III", "TW IV")))
    await _rechain(sessionmaker, from_id=middle.id)
    async with sessionmaker() as s:
        result = await verify(s, key=KEY.encode())
    assert not result.ok and any("isi tidak cocok" in p for p in result.problems)
    assert await asyncio.to_thread(_cli, tmp_path, db_url) == 1
    capsys.readouterr()
    # ...or also declares the chain unkeyed in the head: the key holder sees that too
    await _rechain(sessionmaker, from_id=middle.id, head_mode=audit.PLAIN)
    async with sessionmaker() as s:
        result = await verify(s, key=KEY.encode())
    assert not result.ok and any("rantai tidak berkunci" in p for p in result.problems)
    # ...or guesses a key: still no match
    await _rechain(sessionmaker, key=b"tebakan", from_id=middle.id, head_mode=audit.KEYED)
    async with sessionmaker() as s:
        assert not (await verify(s, key=KEY.encode())).ok


async def test_sopbot_run_refuses_to_start_without_the_key_of_a_keyed_chain(
        tmp_path, db_url, sessionmaker, services, office, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    await _history(sessionmaker, services)
    monkeypatch.delenv(KEY_ENV)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{db_url}"\n[telegram]\ntoken = "123:abc"\n'
                   'api_base_url = "http://127.0.0.1:9/bot"\n')
    assert await asyncio.to_thread(main, ["--config", str(cfg), "run", "--no-upgrade"]) == 2
    err = capsys.readouterr().err
    assert "Bot tidak dijalankan" in err and KEY_ENV in err


async def test_the_final_pdf_and_the_manifest_carry_the_head(walk, clock, tmp_path, services):
    from bot.core import archive as archive_service
    from bot.core.documents import compile_documents, stamp_numbered
    from tests.test_documents_service import (
        drive_to_compile, flat, open_run, pdf_text, sign_off, stored_bytes,
    )

    cycle_id, run6_id = await drive_to_compile(walk)
    kasubag, staf = await walk.who(Role.KASUBAG), await walk.who(Role.STAF, "SEK")

    async def compile_(wf, s):
        return await compile_documents(wf, kasubag, await wf.get_cycle(cycle_id))

    doc = await walk(compile_)
    run9_id = await sign_off(walk, cycle_id, run6_id, doc.id)
    clock.advance(minutes=3)

    async def number(wf: Workflow, s):
        letter = await wf.assign_number(staf, run9_id)
        final = await stamp_numbered(wf, staf, await wf.get_cycle(cycle_id), letter)
        # this transaction's rows are appended at its commit: the head it sees (and
        # prints) is the committed one, a hash already in the chain
        assert await current_head(s) == await current_head_committed()
        return final

    async def current_head_committed():
        async with walk.sm() as other:
            return await current_head(other)

    final = await walk(number)
    async with walk.sm() as s:
        after = await current_head(s)
    pdf = flat(pdf_text(await stored_bytes(walk, final.pdf_file_id)))
    found = re.search(r"Kepala jejak audit saat dokumen ini dibuat: ([0-9a-f]{64}) "
                      r"\((\d+) baris, sha256\)", pdf)
    assert found, pdf[-400:]
    head = found.group(1)
    # the head when the PDF was made: a row of the chain, before the rows of the
    # transaction that made it (the numbering's and the final version's)
    assert head != GENESIS and 0 < after.rows - int(found.group(2)) < 10
    assert f"sopbot audit verify --expect-head {head}" in pdf
    await open_run(walk, cycle_id, 10)
    async with walk.sm() as s:
        result = await archive_service.build_archive(s, services.store, cycle_id,
                                                     tmp_path / "arsip.zip")
        now = await current_head(s)
        result_pdf = await verify(s, expect_head=head)
        assert result_pdf.ok and result_pdf.expected_at is not None
    with zipfile.ZipFile(result.path) as z:
        manifest = z.read("MANIFEST.txt").decode()
    assert hashlib.sha256(manifest.encode()).hexdigest() == result.manifest_sha256
    found = re.search(r"^# Kepala jejak audit: ([0-9a-f]{64}) \((\d+) baris, sha256\)", manifest,
                      re.M)
    assert found and found.group(1) == now.hash and int(found.group(2)) == now.rows

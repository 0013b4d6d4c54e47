"""The documents built as the bot builds them (``bot.core.documents.build_off_loop``):
the workbook in one worker process, the PDF and chart in another, side by side. The
files are the ones the builders make in one go, and the worker processes end with the
build."""
from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace

from bot.core import documents
from bot.core.storage import FileStore
from tests.test_documents import document


def _parts(content: bytes) -> dict[str, bytes]:
    """A workbook's parts, without the one that holds the time of saving."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


async def test_files_built_side_by_side_are_the_files_built_in_one_go(tmp_path):
    data = replace(document(), e_signed=True)  # the PDF leaves room for the signature
    assert documents.WORKER == "process" and len(documents.WORKER_PARTS) == 2
    apart = FileStore(tmp_path / "apart")
    built = await documents.build_off_loop(apart, data, "doc", keep_pdf=True)
    together = documents.build_and_store(FileStore(tmp_path / "together"), data, "doc",
                                         keep_pdf=True)

    assert list(built.files) == list(documents.KINDS) == list(together.files)
    assert {k: f.name for k, f in built.files.items()} == {
        "workbook": "doc.xlsx", "pdf": "doc.pdf", "chart": "doc.png"}
    assert built.box is not None and built.box == together.box
    assert built.pdf is not None and built.pdf.startswith(b"%PDF")
    assert built.files["pdf"].sha256 == ""  # kept to be signed, not stored
    for kind in ("workbook", "chart"):  # stored under their sha256
        content = apart.path_for(built.files[kind].sha256).read_bytes()
        assert hashlib.sha256(content).hexdigest() == built.files[kind].sha256
        assert len(content) == built.files[kind].size
    assert built.files["chart"].sha256 == together.files["chart"].sha256
    wb_apart = apart.path_for(built.files["workbook"].sha256).read_bytes()
    wb_together = FileStore(tmp_path / "together").path_for(
        together.files["workbook"].sha256).read_bytes()
    assert _parts(wb_apart) == _parts(wb_together)
    assert documents._workers.pools is None and documents._workers.users == 0


async def test_held_files_of_an_upload_come_back_from_both_workers(tmp_path):
    built = await documents.build_off_loop(FileStore(tmp_path), document(), "doc", hold=True)
    assert built.held is not None and list(built.held) == list(documents.KINDS)
    for kind, content in built.held.items():
        assert hashlib.sha256(content).hexdigest() == built.files[kind].sha256
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing stored yet
    assert built.size == sum(len(c) for c in built.held.values())


def test_merged_keeps_the_order_of_the_kinds():
    f = documents.BuiltFile
    merged = documents.Built.merged([
        documents.Built({"pdf": f("a.pdf", "1", 1), "chart": f("a.png", "2", 2)}, box=(1,)),
        documents.Built({"workbook": f("a.xlsx", "3", 3)})])
    assert list(merged.files) == ["workbook", "pdf", "chart"]
    assert merged.box == (1,) and merged.held is None and merged.size == 6

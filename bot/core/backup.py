"""`sopbot backup OUT`: a consistent copy of a running SQLite database (SQLite's online
backup API) plus the stored files. PostgreSQL is backed up with pg_dump (README)."""
from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.core.storage import FILE_MODE, private_dir
from models.session import sqlite_path


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupResult:
    database: Path
    files_dir: Path
    files: int
    pages: int


def backup(cfg: Config, out: Path) -> BackupResult:
    db = sqlite_path(cfg.database_url)
    if db is None:
        raise BackupError("Cadangan bawaan hanya untuk SQLite. Untuk PostgreSQL gunakan pg_dump "
                          "(lihat README).")
    if not db.exists():
        raise BackupError(f"Basis data {db} tidak ditemukan.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"Folder {out} sudah berisi berkas; pilih folder kosong.")
    private_dir(out)
    target = out / db.name
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, FILE_MODE))  # 0600 before SQLite
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        # copies page by page while the bot keeps writing; the copy is one consistent state
        src.backup(dst, pages=256)
        pages = dst.execute("PRAGMA page_count").fetchone()[0]
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    files_out = out / "files"
    count = 0
    store = cfg.storage_dir
    if store.exists():
        for f in store.rglob("*"):
            if f.is_file() and not f.name.endswith(".tmp"):
                dest = files_out / f.relative_to(store)
                if not dest.parent.is_dir():
                    private_dir(files_out)
                    private_dir(dest.parent)
                shutil.copy2(f, dest)
                os.chmod(dest, FILE_MODE)
                count += 1
    return BackupResult(database=target, files_dir=files_out, files=count, pages=pages)

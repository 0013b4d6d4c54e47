"""Evidence and generated documents on disk, named by their sha256."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import StoredFile


FILE_MODE = 0o600  # stored files, the database, backups, archives: owner only
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make it 0700; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a new file is created 0600, an existing
    one is made 0600."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as a 0600 file."""
    with open(path, "wb", opener=private_opener) as fh:
        fh.write(data)
    return Path(path)


class FileTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} > {limit}")
        self.size = size
        self.limit = limit


class FileStore:
    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def make_private(self) -> int:
        """Set the storage folder to 0700 and everything in it to 0600/0700 (files
        stored before files were created private); returns how many entries changed."""
        if not self.root.is_dir():
            return 0
        changed = 0
        for path in [self.root, *self.root.rglob("*")]:
            want = DIR_MODE if path.is_dir() else FILE_MODE
            if path.is_symlink() or (path.stat().st_mode & 0o777) == want:
                continue
            os.chmod(path, want)
            changed += 1
        return changed

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def read(self, stored: StoredFile) -> bytes:
        return self.path_for(stored.sha256).read_bytes()

    async def put(self, session: AsyncSession, data: bytes, filename: str = "",
                  mime_type: str = "application/octet-stream", *, limit: bool = False) -> StoredFile:
        if limit and self.max_bytes is not None and len(data) > self.max_bytes:
            raise FileTooLarge(len(data), self.max_bytes)
        digest = self.write_blob(data)
        return await self.record(session, digest, len(data), filename, mime_type)

    def write_blob(self, data: bytes) -> str:
        """Hash ``data`` and write it under its sha256 (once); returns the sha256. Plain
        blocking work: a worker thread may do it (the documents are built there)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if not path.exists():
            if not path.parent.is_dir():
                private_dir(self.root)
                private_dir(path.parent)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            write_private(tmp, data)
            tmp.replace(path)
        return digest

    async def record(self, session: AsyncSession, digest: str, size: int, filename: str = "",
                     mime_type: str = "application/octet-stream") -> StoredFile:
        """The ``stored_file`` row of a blob written by :meth:`write_blob`."""
        existing = (
            await session.execute(select(StoredFile).where(StoredFile.sha256 == digest))
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        # a Telegram file name can be longer than the column (PostgreSQL would refuse it)
        row = StoredFile(sha256=digest, size=size, mime_type=(mime_type or "")[:100],
                         filename=(filename or "")[:255])
        session.add(row)
        await session.flush()
        return row

"""The text catalogue: every text a user sees, in Bahasa Indonesia, in one place.

Templates use ``str.format`` fields; values that come from users must be HTML-escaped
by the caller (``t()`` escapes every keyword argument unless it is ``Raw``).
"""
from __future__ import annotations

import html
from typing import Any

from models.enums import CycleKind, Role

ROLE_TITLES: dict[Role, str] = {
    Role.KADIS: "Kepala Dinas",
    Role.SEKRETARIS: "Sekretaris",
    Role.KASUBAG: "Kasubag Perencanaan",
    Role.KABID: "Kepala Bidang",
    Role.STAF: "Staf",
    Role.ADMIN: "Admin",
    Role.CONTACT: "Kontak OPD",
}

QUARTER_NAMES = {1: "Triwulan I", 2: "Triwulan II", 3: "Triwulan III", 4: "Triwulan IV"}


class Raw(str):
    """A value already safe for HTML (not escaped again)."""


def period_label(kind: CycleKind, year: int, quarter: int) -> str:
    if kind == CycleKind.ANNUAL:
        return f"Tahun {year}"
    return f"{QUARTER_NAMES[quarter]} Tahun {year}"


TEXTS: dict[str, str] = {
    # errors of the workflow
    "err.not_allowed": "Maaf, Anda tidak berwenang melakukan ini.",
    "err.not_assignee": "Maaf, tugas ini bukan untuk Anda.",
    "err.wrong_state": "Langkah ini tidak dapat dilakukan sekarang: {detail}",
    "err.stale_button": "Tombol ini sudah tidak berlaku.",
    "err.not_found": "Data tidak ditemukan.",
    "err.inactive": "Akun Anda tidak aktif. Hubungi admin kantor.",
    "err.cycle_exists": "Siklus {period} sudah dimulai.",
    "err.no_person": "Belum ada {role} aktif yang terdaftar{where}. Hubungi admin kantor.",
    "err.deadline_range": "Batas waktu harus antara {minimum} dan {maximum} hari kerja.",
    "err.unit_not_done": "Masih ada bidang yang belum mengirim data: {units}.",
    "err.answers_missing": "Masih ada {count} indikator yang belum diisi atau dilewati.",
    "err.reason_required": "Alasan pengembalian wajib diisi.",
    "err.generic": "Maaf, terjadi kesalahan. Silakan coba lagi sebentar lagi.",
    # notifications
    "n.disposition": (
        "<b>Disposisi dari {sender}</b>\n"
        "Perihal: penyusunan {document} {period}\n"
        "Instruksi: {instruction}\n"
        "Batas waktu: {due}\n\n"
        "Langkah {step}: {activity}"
    ),
    "n.coordinate": (
        "<b>Disposisi dari {sender}</b>\n"
        "Perihal: penyusunan {document} {period}\n"
        "Catatan Sekretaris: {note}\n"
        "Instruksi Kadis: {instruction}\n"
        "Batas waktu: {due}\n\n"
        "Langkah {step}: {activity}"
    ),
    "n.data_request": (
        "<b>Permintaan data kinerja {period}</b>\n"
        "Dari: {sender}\n"
        "Bidang: {unit}\n"
        "Batas waktu: {due}\n\n"
        "Catatan data yang dibutuhkan ({count} indikator):\n{items}"
    ),
    "n.data_request_item": "{no}. {name} ({unit}): target {target}",
    "n.unit_submitted": "Bidang <b>{unit}</b> telah mengirim data kinerja {period} ({count} indikator).",
    "n.all_units_in": (
        "Semua bidang telah mengirim data kinerja {period}. "
        "Langkah 5 (mengolah data) dimulai. Batas waktu: {due}"
    ),
    "n.collection_closed": (
        "Pengumpulan data {period} ditutup oleh {sender}. Bidang yang tidak mengirim: {units}. "
        "Langkah 5 (mengolah data) dimulai. Batas waktu: {due}"
    ),
    "n.unit_returned": (
        "<b>Data bidang {unit} dikembalikan</b> oleh {sender} untuk diperbaiki.\n"
        "Catatan: {note}\nBatas waktu baru: {due}"
    ),
    "n.step_opened": "<b>Tugas baru: langkah {step}</b>\n{activity}\n{period}\nBatas waktu: {due}",
    "n.review_request": (
        "<b>Dokumen {period} menunggu {action} Anda</b> (versi {version}).\n"
        "Diajukan oleh {sender}. Batas waktu: {due}"
    ),
    "n.documents_returned": (
        "<b>Dokumen {period} dikembalikan</b> oleh {sender}.\nAlasan: {reason}\n"
        "Silakan perbaiki dan ajukan versi baru. Batas waktu: {due}"
    ),
    "n.numbered": "Dokumen {period} telah diberi nomor <b>{number}</b> tanggal {date}.",
    "n.delivery_request": "Dokumen {period} ({number}) disampaikan kepada {agency}. Mohon konfirmasi penerimaan.",
    "n.receipt_recorded": "Tanda terima dari {agency} telah dicatat.",
    "n.cycle_closed": (
        "<b>Siklus {period} selesai.</b> Dokumen nomor {number} telah diterima semua OPD terkait."
    ),
    # buttons
    "b.accept_forward": "Terima & teruskan ke Kasubag",
    "b.coordinate": "Koordinasikan bidang",
    "b.start_entry": "Mulai isi data",
    "b.process_done": "Selesai mengolah data",
    "b.compile": "Susun dokumen",
    "b.paraf": "Paraf",
    "b.sign": "Tandatangani",
    "b.return": "Kembalikan",
    "b.number": "Beri nomor",
    "b.archive": "Periksa & arsipkan",
    "b.deliver": "Catat penyampaian",
    "b.confirm_receipt": "Konfirmasi terima",
    "b.open_task": "Buka tugas",
}


def t(key: str, **kwargs: Any) -> str:
    template = TEXTS[key]
    safe = {k: v if isinstance(v, Raw) else html.escape(str(v), quote=False)
            for k, v in kwargs.items()}
    return template.format(**safe)


def role_title(role: Role | str) -> str:
    return ROLE_TITLES[Role(role)]

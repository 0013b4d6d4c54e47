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
    # onboarding and common
    "o.stranger": (
        "Maaf, akun Telegram Anda belum terdaftar di bot ini.\n"
        "Minta kode undangan kepada admin kantor atau Kasubag Perencanaan, lalu buka "
        "tautan undangan itu atau kirim /start KODE."
    ),
    "o.code_unknown": "Kode undangan tidak dikenal. Periksa kembali tautan undangan Anda, atau minta kode baru kepada admin kantor.",
    "o.code_used": "Kode undangan ini sudah dipakai. Minta kode baru kepada admin kantor bila Anda belum terdaftar.",
    "o.code_expired": "Kode undangan ini sudah kedaluwarsa. Minta kode baru kepada admin kantor.",
    "o.code_taken": "Akun Telegram ini sudah terdaftar atas nama pegawai lain. Hubungi admin kantor.",
    "o.registered": "Selamat datang, <b>{name}</b>. Anda terdaftar sebagai <b>{role}</b>.\nKetik /bantuan untuk melihat apa yang dapat Anda lakukan, atau /tugas untuk tugas Anda.",
    "o.welcome_back": "Halo, <b>{name}</b> ({role}). Ketik /tugas untuk tugas Anda atau /bantuan untuk bantuan.",
    "o.no_conversation": "Saya tidak sedang menunggu jawaban dari Anda. Ketik /tugas untuk melihat tugas Anda.",
    "o.file_unexpected": "Saya tidak sedang menunggu berkas dari Anda. Ketik /tugas untuk melihat tugas Anda.",
    "o.cancelled": "Isian dibatalkan. Jawaban yang sudah tersimpan tetap tersimpan.",
    "o.nothing_to_cancel": "Tidak ada isian yang sedang berjalan.",
    "o.unknown_command": "Perintah tidak dikenal. Ketik /bantuan.",
    "e.file_too_big": "Berkas terlalu besar ({size} MB). Batas ukuran berkas {limit} MB; kirim berkas yang lebih kecil.",
    # help
    "h.head": "<b>{name}</b> - {role}",
    "h.kadis": "/mulai - memulai siklus pengumpulan data kinerja (langkah 1, disposisi kepada Sekretaris)\n/status - papan status siklus\nAnda juga menandatangani dokumen (langkah 8) lewat tombol <b>Tandatangani</b> atau <b>Kembalikan</b>.",
    "h.sekretaris": "Meneruskan disposisi kepada Kasubag Perencanaan (langkah 2) dan memaraf dokumen (langkah 7) lewat tombol.\n/status - papan status siklus",
    "h.kasubag": "Mengoordinasikan bidang (langkah 3), mengolah data (langkah 5), menyusun dokumen (langkah 6) dan mengarsipkan (langkah 10).\n/status - papan status siklus, mengembalikan data bidang, menutup pengumpulan",
    "h.kabid": "Mengisi data kinerja bidang indikator demi indikator (langkah 4), menyerahkan indikator kepada staf, dan mengirim data bidang kepada Kasubag.",
    "h.staf": "Mengisi indikator yang diserahkan Kabid (langkah 4); staf Sekretariat memberi nomor surat (langkah 9) dan menyampaikan dokumen (langkah 11).",
    "h.admin": "Mengelola pegawai, undangan dan data kantor; melihat papan status semua siklus.",
    "h.kontak": "Menerima dokumen kinerja dari dinas dan mengonfirmasi penerimaannya lewat tombol.",
    "h.common": "/tugas - tugas Anda yang masih terbuka\n/batal - batalkan isian yang sedang berjalan\n/cek KODE - cek keaslian dokumen bertanda tangan",
    # tasks and status
    "s.late": " - <b>terlambat {duration}</b>",
    "s.task_line": "<b>Langkah {step}</b>: {activity}\n{period}{unit}\nBatas waktu: {due}{late}",
    "s.assigned_line": "Indikator yang diserahkan kepada Anda. Batas waktu: {due}{late}",
    "s.tasks_head": "<b>Tugas Anda ({count})</b>",
    "s.no_tasks": "Tidak ada tugas terbuka untuk Anda saat ini.",
    "s.open_task": "Buka langkah {step}",
    "s.no_cycle": "Belum ada siklus. Kadis memulai siklus dengan /mulai.",
    "s.board_head": "<b>Siklus {period}</b> ({status})",
    "s.board_holder": "\n      pemegang: {name}, batas {due}{late}",
    "s.cycle_active": "berjalan",
    "s.cycle_closed": "selesai",
    "s.cycle_cancelled": "dibatalkan",
    "s.unit_open": "mengisi {answered}/{total}",
    "s.unit_done": "terkirim ({total} indikator)",
    "s.unit_returned": "dikembalikan",
    "s.unit_skipped": "ditutup tanpa data",
    "s.unit_cancelled": "dibatalkan",
    "s.delivery_line": "- {agency}: {status}",
    "s.delivery_pending": "belum disampaikan",
    "s.delivery_sent": "terkirim, menunggu konfirmasi",
    "s.delivery_received": "diterima",
    # dispositions (steps 1-3)
    "d.choose_period": "<b>Mulai siklus pengumpulan data kinerja</b>\nPilih periodenya:",
    "d.ask_instruction": "Periode: <b>{period}</b>.\nTulis instruksi disposisi untuk Sekretaris (balas pesan ini):",
    "d.instruction_length": "Instruksi harus diisi, paling banyak {limit} karakter. Silakan tulis ulang:",
    "d.ask_letter": "Lampirkan surat masuk (foto atau PDF) bila ada, atau tekan tombol di bawah.",
    "d.ask_instruction_first": "Tulis dulu instruksi disposisinya (balas pesan ini):",
    "d.started": "Siklus <b>{period}</b> dimulai. Disposisi telah dikirim kepada Sekretaris.",
    "d.ask_note": "Tulis catatan disposisi untuk Kasubag Perencanaan (balas pesan ini):",
    "d.or_without_note": "Atau teruskan tanpa catatan:",
    "d.forwarded": "Disposisi diteruskan kepada <b>{name}</b>. Batas waktu langkah berikutnya: {due}",
    "d.coord_head": "<b>Koordinasi bidang - {period}</b>\nBatas waktu langkah ini: {due}\n\nBidang dan indikator yang diminta (tekan untuk memilih/membatalkan):",
    "d.coord_deadline": "\nBatas waktu pengisian data: <b>{days} hari kerja</b> ({due})",
    "d.choose_one_unit": "Pilih sedikitnya satu bidang.",
    "d.request_sent": "Permintaan data dikirim kepada {count} bidang: {units}.",
    "b.no_letter": "Mulai tanpa lampiran",
    "b.forward_now": "Teruskan tanpa catatan",
    "b.send_request": "Kirim permintaan data",
    "b.deliver_to": "Sampaikan ke {agency}",
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


def duration_text(minutes: int, day_minutes: int) -> str:
    """Working time in words: "2 hari 3 jam", "25 menit"."""
    days, rest = divmod(max(0, int(minutes)), day_minutes)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} hari")
    if hours:
        parts.append(f"{hours} jam")
    if mins or not parts:
        parts.append(f"{mins} menit")
    return " ".join(parts)

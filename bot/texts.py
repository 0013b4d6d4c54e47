"""The text catalogue: every text a user sees, in Bahasa Indonesia, in one place.

Templates use ``str.format`` fields; values that come from users must be HTML-escaped
by the caller (``t()`` escapes every keyword argument unless it is ``Raw``).
"""
from __future__ import annotations

import html
import re
import string
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
    "err.which_office": "Ada lebih dari satu kantor: sebutkan kantornya (--kantor KODE_UNIT).",
    "err.cycle_exists": "Siklus {period} sudah dimulai.",
    "err.no_person": "Belum ada {role} aktif yang terdaftar{where}. Hubungi admin kantor.",
    "err.deadline_range": "Batas waktu harus antara {minimum} dan {maximum} hari kerja.",
    "err.unit_not_done": "Masih ada bidang yang belum mengirim data: {units}.",
    "err.answers_missing": "Masih ada {count} indikator yang belum diisi atau dilewati.",
    "err.reason_required": "Alasan pengembalian wajib diisi.",
    "err.pick_answers": "Pilih paling sedikit satu indikator yang dikembalikan.",
    "err.not_returned": (
        "Jawaban ini tidak dikembalikan Kasubag; jawaban itu tetap seperti yang sudah dikirim."
    ),
    "err.analysis_missing": (
        "Masih ada {count} indikator di bawah target yang belum diisi faktor penghambat dan "
        "upayanya."
    ),
    "err.generic": "Maaf, terjadi kesalahan. Silakan coba lagi sebentar lagi.",
    "err.private_only": (
        "Bot ini hanya melayani percakapan pribadi. Silakan buka chat pribadi dengan bot; "
        "data kantor tidak pernah dikirim ke grup."
    ),
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
    "n.unit_submitted": "<b>{unit}</b> telah mengirim data kinerja {period} ({count} indikator).",
    "n.all_units_in": (
        "Semua bidang telah mengirim data kinerja {period}. "
        "Langkah 5 (mengolah data) dimulai. Batas waktu: {due}"
    ),
    "n.collection_closed": (
        "Pengumpulan data {period} ditutup oleh {sender}. Bidang yang tidak mengirim: {units}. "
        "Langkah 5 (mengolah data) dimulai. Batas waktu: {due}"
    ),
    "n.answers_returned": (
        "<b>{count} jawaban {unit} dikembalikan</b> oleh {sender} untuk diperbaiki:\n"
        "{lines}\nJawaban lain tetap seperti yang sudah dikirim. Batas waktu baru: {due}"
    ),
    "n.answer_returned_line": "• <b>{name}</b>\n   Catatan: {note}",
    "n.answer_returned_by": "\n   (diperbaiki oleh {name})",
    "n.unit_returned": (
        "<b>Data {unit} dikembalikan</b> oleh {sender} untuk diperbaiki.\n"
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
    "o.registered": "Selamat datang, <b>{name}</b>! Anda terdaftar sebagai <b>{role}</b>.\nKetik /bantuan untuk melihat apa yang dapat Anda lakukan, atau /tugas untuk tugas Anda.",
    "o.welcome_back": "Halo, <b>{name}</b> ({role}). Ketik /tugas untuk tugas Anda atau /bantuan untuk bantuan.",
    "o.no_conversation": "Saya tidak sedang menunggu jawaban dari Anda. Ketik /tugas untuk melihat tugas Anda.",
    "o.file_unexpected": "Saya tidak sedang menunggu berkas dari Anda. Ketik /tugas untuk melihat tugas Anda.",
    "o.cancelled": "Isian dibatalkan. Jawaban yang sudah tersimpan tetap tersimpan.",
    "o.nothing_to_cancel": "Tidak ada isian yang sedang berjalan.",
    "o.unknown_command": "Perintah tidak dikenal. Ketik /bantuan.",
    # an account bound in several offices
    "o.pick_office": "/{command}: Anda berwenang di {count} kantor. Pilih kantornya:",
    "o.office_chosen": "/{command} - 🏢 <b>{office}</b>",
    "o.office_role": "{role} di {office}",
    "d.pick_office": "<b>Siklus {period}</b>: Anda Kepala Dinas di {count} kantor. Pilih kantor yang memulai siklus ini:",
    "h.offices": "Akun Telegram Anda terdaftar di {count} kantor:",
    "h.office_line": "🏢 <b>{office}</b>: {name} - {role}",
    "h.offices_note": "Kartu, pengingat dan /tugas menyebut nama kantornya; tombol bekerja di kantor kartunya. /status menampilkan papan setiap kantor tempat Anda berwenang. /mulai, /pegawai dan /alihkan menanyakan kantornya bila Anda berwenang di lebih dari satu kantor. /batal membatalkan isian yang berjalan di semua kantor.",
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
    "s.tasks_office": "🏢 <b>{office}</b>",
    "n.office_head": "🏢 <b>{office}</b>",
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
    "b.record_receipt": "Catat tanda terima {agency}",
    "b.confirm_receipt": "Konfirmasi terima",
    "b.open_task": "Buka tugas",
    "b.view_unit": "Lihat data",
    "b.return_unit": "Kembalikan",
    # reminders, escalation, digest and the quarterly prompt (bot/core/reminders.py)
    "r.share": (
        "<b>Pengingat tugas</b>: {percent} waktu langkah {step} telah berlalu.\n"
        "{activity}\n{where}\n"
        "Sisa waktu kerja: {left}. Batas waktu: {due}"
    ),
    "r.lastday": (
        "<b>Hari ini hari terakhir</b> langkah {step}.\n{activity}\n{where}\n"
        "Batas waktu: {due}"
    ),
    "r.due": (
        "<b>Batas waktu langkah {step} telah tiba</b> ({due}).\n{activity}\n{where}\n"
        "Mohon segera diselesaikan."
    ),
    "r.overdue": (
        "<b>Langkah {step} terlambat {late}.</b>\n{activity}\n{where}\n"
        "Batas waktu: {due}{reported}\nMohon segera diselesaikan."
    ),
    "r.overdue_reported": "\nKeterlambatan ini telah dilaporkan kepada {title} ({name}).",
    "r.escalate": (
        "<b>Eskalasi: langkah {step} terlambat {late}.</b>\n"
        "{holder} ({role}) belum menyelesaikan: {activity}\n{where}\n"
        "Batas waktu: {due}"
    ),
    "r.digest_head": "<b>Ringkasan harian SOP Data Kinerja</b>\n{date}",
    "r.digest_cycle": "\n<b>{period}</b>",
    "r.digest_line": "- Langkah {step}{unit}: {holder}, batas {due}",
    "r.digest_late": "- Langkah {step}{unit}: {holder}, batas {due} - <b>terlambat {late}</b>",
    "r.digest_no_open": "- Tidak ada langkah yang sedang berjalan.",
    "r.digest_receipt": (
        "- Menunggu tanda terima {agency} (dikirim {sent}; kontak OPD diingatkan "
        "{reminded} kali; waktu OPD, bukan keterlambatan kantor)"
    ),
    "r.receipt_unconfirmed": (
        "ℹ️ {agency} belum mengonfirmasi penerimaan dokumen setelah {n} kali pengingat "
        "kepada {contact}. Ini waktu OPD tersebut, bukan keterlambatan kantor. Bila tanda "
        "terima kertas yang sudah ditandatangani ada, catat fotonya:"
    ),
    "r.receipt": (
        "🔔 Pengingat ke-{n}: dokumen {period} dari {office} disampaikan kepada {agency} "
        "pada {sent}. Mohon tekan <b>Konfirmasi terima</b> bila dokumen sudah diterima."
    ),
    "r.digest_summary": "\nTerlambat: {late} dari {total} tugas terbuka.",
    "r.prompt": (
        "<b>{period} telah berakhir.</b>\n"
        "Mulai pengumpulan dan pengukuran data kinerja {period} sekarang?"
    ),
    "r.b_start": "Mulai {period}",
}


# guided data entry (step 4) and the Kasubag's side of steps 4-5
TEXTS.update({
    "e.card_head": "<b>Data kinerja {unit} - {period}</b>",
    "e.card_progress": "<b>Indikator {no} dari {total}</b>",
    "e.card_body": (
        "<b>{name}</b>\n"
        "Satuan: {uom}\n"
        "Target {period}: <b>{target}</b>\n"
        "Realisasi periode lalu{prev_period}: {prev}\n"
        "Definisi/formula: {definition}"
    ),
    "e.card_assigned": "Diserahkan kepada: {name}",
    "e.card_current": "Jawaban tersimpan: <b>{value}</b>{extra}",
    "e.ask_number": "Ketik nilai realisasinya (contoh: 85,5 atau 1.250).",
    "e.ask_text": "Ketik nilainya (teks, paling banyak {limit} karakter).",
    "e.ask_quarter_own": ("Ketik nilai realisasinya: <b>realisasi {quarter} saja</b>, bukan "
                          "jumlah sejak awal tahun (contoh: 85,5 atau 1.250)."),
    "e.ask_quarter_sd": ("Ketik nilai realisasinya: <b>realisasi s.d. {quarter}</b>, "
                         "dihitung sejak awal tahun (contoh: 85,5 atau 1.250)."),
    "e.running_sum": ("Realisasi s.d. {prev}: <b>{value}</b>. Realisasi s.d. {quarter} = "
                      "{value} + angka yang Anda ketik."),
    "e.running_average": ("Rata-rata s.d. {prev}: <b>{value}</b>. Realisasi s.d. {quarter} = "
                          "rata-rata triwulan I sampai {quarter}."),
    "e.running_last": "Realisasi s.d. {prev}: <b>{value}</b>.",
    "e.running_missing": ("Realisasi {prev} belum ada, jadi realisasi s.d. {quarter} belum "
                          "dapat dihitung."),
    "e.keep_hint": "Tekan <b>Tetap</b> untuk memakai jawaban tersimpan, atau ketik nilai baru.",
    "e.text_invalid": "Nilai teks harus diisi, paling banyak {limit} karakter.",
    "e.saved": "✅ Tersimpan: <b>{name}</b> = <b>{value}</b>",
    "e.skipped": "⏭ Indikator <b>{name}</b> dilewati.",
    "e.evidence_prompt": (
        "Kirim foto/dokumen bukti (opsional: foto, PDF, Word, Excel, PowerPoint; "
        "maks. {limit}), atau tekan <b>Lanjut</b>."
    ),
    "e.evidence_count": "Bukti dukung: {count} berkas",
    "e.note_line": "Catatan: {note}",
    "e.evidence_saved": "📎 Bukti diterima: {name}",
    "e.evidence_dup": "Berkas ini sudah dilampirkan sebagai bukti indikator ini.",
    "e.note_prompt": "Tulis catatan untuk indikator <b>{name}</b> (paling banyak {limit} karakter), lalu kirim.",
    "e.note_saved": "✏️ Catatan tersimpan.",
    "e.why_below": "📉 Capaian {capaian}: di bawah target.",
    "e.why_above": "📈 Capaian {capaian}: melampaui target.",
    "e.why_not_met": "📉 Target belum tercapai.",
    "e.ask_penghambat": (
        "<b>Apa faktor penghambatnya?</b> Tulis satu kalimat singkat (paling banyak {limit} "
        "karakter)."
    ),
    "e.ask_upaya": (
        "<b>Apa upaya / rencana tindak lanjutnya?</b> Tulis satu kalimat singkat (paling "
        "banyak {limit} karakter)."
    ),
    "e.ask_pendukung": (
        "<b>Apa faktor pendukungnya?</b> Tulis satu kalimat singkat (paling banyak {limit} "
        "karakter)."
    ),
    "e.why_optional": (
        "Boleh dilewati: tekan <b>Lewati pertanyaan</b>, atau ketik nilai indikator "
        "berikutnya."
    ),
    "e.why_mandatory": "Wajib diisi sebelum lanjut.",
    "e.why_label_penghambat": "Faktor penghambat",
    "e.why_label_upaya": "Upaya / rencana tindak lanjut",
    "e.why_label_pendukung": "Faktor pendukung",
    "e.why_line": "{label}: {text}",
    "e.why_saved": "✏️ {label} tersimpan.",
    "e.why_invalid": "{label} harus diisi, paling banyak {limit} karakter.",
    "e.why_number": (
        "Angka \"{raw}\" bukan jawaban pertanyaan ini. Tulis {label} dengan kata-kata."
    ),
    "e.why_left": "{label} untuk <b>{name}</b> tidak diisi.",
    "e.why_required": "Isi dulu faktor penghambat dan upayanya.",
    "e.returned_note": "↩️ Dikembalikan Kasubag: {note}",
    "e.note_invalid": "Catatan harus diisi, paling banyak {limit} karakter.",
    "e.evidence_hint": "Untuk menulis catatan tekan <b>Tambah catatan</b>; untuk indikator berikutnya tekan <b>Lanjut</b>.",
    "e.file_first": "Isi dulu nilai indikatornya; bukti dukung dikirim sesudah nilai tersimpan.",
    "e.file_type": (
        "Jenis berkas \"{name}\" tidak diterima sebagai bukti. Kirim foto, PDF, "
        "Word (.doc/.docx), Excel (.xls/.xlsx) atau PowerPoint (.ppt/.pptx); "
        "arsip ZIP tidak diterima, kirim berkasnya satu per satu."
    ),
    "e.evidence_too_big": (
        "Berkas terlalu besar ({size}). Batas ukuran bukti dukung {limit}; "
        "kirim berkas yang lebih kecil (misalnya foto, atau PDF yang dikompres). "
        "Tidak ada yang disimpan."
    ),
    "e.confirm_head": "⚠️ Periksa kembali nilai untuk <b>{name}</b>: <b>{value}</b>",
    "e.confirm_question": "Apakah nilai ini benar? Nilai belum disimpan.",
    "e.why_negative": "- nilainya negatif",
    "e.why_percent": "- persentase lebih dari 100%",
    "e.why_high": "- lebih dari 10 kali realisasi periode lalu ({prev})",
    "e.why_low": "- kurang dari sepersepuluh realisasi periode lalu ({prev})",
    "e.why_target_high": "- lebih dari {factor} kali target periode ini ({target})",
    "e.why_target_low": "- kurang dari sepersepuluh target periode ini ({target})",
    "e.ambiguous_head": "❓ Angka <b>{raw}</b> untuk <b>{name}</b> dapat dibaca lebih dari satu cara.",
    "e.ambiguous_question": "Pilih yang Anda maksud. Nilai belum disimpan.",
    "e.b_reading": "{value} ({words})",
    "e.evidence_early": "📎 Bukti diterima: {name}. Bukti ini dilampirkan pada nilai yang Anda ketik berikutnya.",
    "e.evidence_waiting": "📎 Bukti menunggu nilai: {count} berkas",
    "e.evidence_attached": "📎 {count} bukti yang dikirim lebih dulu dilampirkan.",
    "e.file_not_now": "Buka indikatornya dulu (tekan <b>Ubah</b> pada ringkasan), lalu kirim bukti dukungnya.",
    "e.summary_head": "<b>Ringkasan data {unit} - {period}</b>",
    "e.summary_line": "{no}. {name}: <b>{value}</b>{evidence}{assigned}",
    "e.summary_evidence": " (📎 {count})",
    "e.summary_missing": "\n❗ {count} indikator belum diisi atau dilewati.",
    "e.summary_ready_kabid": "\nSemua indikator sudah diisi atau dilewati. Periksa lalu tekan <b>Kirim ke Kasubag</b>, atau <b>Ubah</b> nomor indikatornya.",
    "e.summary_ready_staf": "\nSemua indikator yang diserahkan kepada Anda sudah diisi. Tekan <b>Selesai</b>, atau <b>Ubah</b> nomor indikatornya.",
    "e.value_skipped": "dilewati",
    "e.value_missing": "belum diisi",
    "e.first_item": "Ini indikator pertama.",
    "e.not_yours": "Belum ada indikator yang diserahkan kepada Anda oleh Kabid.",
    "e.no_items": "Tidak ada indikator untuk diisi.",
    "e.cancelled": "Pengisian dihentikan. Jawaban yang sudah tersimpan tetap tersimpan. Tekan <b>Lanjutkan</b> untuk meneruskan.",
    "e.closed": "Pengisian data ini sudah ditutup; jawaban Anda yang tersimpan tetap tersimpan.",
    "e.submitted": "✅ Data <b>{unit}</b> ({count} indikator) telah dikirim kepada Kasubag Perencanaan.",
    "e.staff_done": "✅ Terima kasih. Kabid telah diberi tahu bahwa {count} indikator Anda selesai diisi.",
    "e.staff_done_notify": "{name} selesai mengisi {count} indikator yang Anda serahkan ({unit}, {period}).",
    "e.assign_head": "<b>Serahkan indikator kepada staf</b>\nPilih indikatornya:",
    "e.assign_line": "{no}. {name} - {who}",
    "e.assign_self": "dikerjakan Kabid",
    "e.assign_choose": "Serahkan <b>{name}</b> kepada:",
    "e.assign_done": "✅ {name} diserahkan kepada {who}.",
    "e.assign_back": "✅ {name} dikerjakan Kabid sendiri.",
    "e.no_staff": "Belum ada staf aktif di bidang ini.",
    "e.b_skip": "Lewati",
    "e.b_back": "◀ Kembali",
    "e.b_cancel": "Batal",
    "e.b_keep": "Tetap: {value} ▶",
    "e.b_next": "Lanjut ▶",
    "e.b_note": "Tambah catatan",
    "e.b_change": "Ubah nilai",
    "e.b_yes": "Ya, benar",
    "e.b_retry": "Ulangi",
    "e.b_summary": "Ringkasan",
    "e.b_send": "Kirim ke Kasubag",
    "e.b_edit": "Ubah {no}",
    "e.b_hand": "Serahkan ke staf",
    "e.b_done": "Selesai",
    "e.b_resume": "Lanjutkan",
    "e.b_self": "Kabid sendiri",
    "e.b_no_note": "Lanjut tanpa catatan ▶",
    "e.b_why_skip": "Lewati pertanyaan",
    "c.b_view": "Lihat data {unit}",
    "c.b_return": "Kembalikan data {unit}",
    "c.b_return_some": "Kembalikan jawaban tertentu",
    "c.pick_head": (
        "<b>Kembalikan jawaban {unit}</b>\nPilih indikator yang perlu diperbaiki; "
        "setiap indikator diberi catatan. Jawaban lain tetap terkirim."
    ),
    "c.pick_line": "{mark} {no}. {name}: <b>{value}</b>{note}",
    "c.pick_note": "\n    catatan: {note}",
    "c.pick_count": "Dipilih: {count} indikator.",
    "c.b_pick": "{mark} {no}. {name}",
    "c.b_pick_send": "Kembalikan {count} jawaban",
    "c.b_pick_cancel": "Batal",
    "c.ask_item_note": (
        "Tulis catatan untuk <b>{name}</b> (jawaban: {value}): apa yang perlu diperbaiki? "
        "(balas pesan ini)"
    ),
    "c.pick_cancelled": "Pengembalian jawaban dibatalkan.",
    "c.pick_use_buttons": "Pilih indikator dengan tombol pada daftar, atau tekan Batal.",
    "c.answers_returned": (
        "↩️ {count} jawaban {unit} dikembalikan kepada {name}. Jawaban lain tetap terkirim."
    ),
    "c.run_note_answers": "{count} jawaban dikembalikan",
    "c.b_close": "Tutup pengumpulan",
    "c.b_close_yes": "Ya, tutup sekarang",
    "c.b_close_no": "Batal",
    "c.view_head": "<b>Data {unit} - {period}</b> ({status})",
    "c.view_line": "{no}. {name}: <b>{value}</b>{evidence}{note}{who}",
    "c.view_note": "\n    catatan: {note}",
    "c.view_who": "\n    diisi oleh {name}",
    "c.view_why": "\n    {label}: {text}",
    "c.status_open": "masih mengisi, putaran {round}",
    "c.status_done": "terkirim, putaran {round}",
    "c.status_skipped": "ditutup tanpa data",
    "c.status_returned": "dikembalikan",
    "c.ask_reason": "Tulis alasan pengembalian data <b>{unit}</b> untuk Kabid (balas pesan ini):",
    "c.reason_length": "Alasan harus diisi, paling banyak {limit} karakter. Silakan tulis ulang:",
    "c.returned": "↩️ Data <b>{unit}</b> dikembalikan kepada {name} dengan alasan: {reason}",
    "c.close_confirm": (
        "<b>Tutup pengumpulan data {period}?</b>\n"
        "Bidang yang belum mengirim: {units}.\n"
        "Bidang itu dicatat \"ditutup tanpa data\" dan langkah 5 (mengolah data) dimulai.\n\n"
        "Ketik catatan bila perlu (pengumpulan langsung ditutup dengan catatan itu), "
        "atau tekan <b>Ya, tutup sekarang</b>."
    ),
    "c.close_note_length": "Catatan paling banyak {limit} karakter. Silakan tulis ulang:",
    "c.closed": "Pengumpulan data ditutup. Bidang tanpa data: {units}.",
    "c.closed_cancelled": "Pengumpulan data tidak ditutup.",
    "c.processed": "✅ Pengolahan data selesai. Langkah {step} ({activity}) dimulai; batas waktu {due}.",
})

# the outbox sender (bot/telegram/outbox_sender.py): a message Telegram refused
TEXTS.update({
    # appended (as plain text) to a message re-sent without the buttons Telegram refused
    "x.buttons_dropped": "(Tombol pesan ini tidak dapat ditampilkan. Ketik /tugas untuk membuka tugas Anda.)",
    "x.outbox_failed": (
        "⚠️ <b>Pesan bot tidak terkirim</b>\n"
        "Untuk: {name} ({role})\n"
        "Pesan: {summary}\n"
        "Alasan dari Telegram: {reason}\n\n"
        "Mohon hubungi yang bersangkutan dan minta ia mengirim /tugas kepada bot: "
        "tugas dan tombolnya ada di sana."
    ),
})


_FORMATTER = string.Formatter()
_TAGS = re.compile(r"<[^<>]*>")
_DOT_AFTER = re.compile(r"((?:</?[a-zA-Z][^<>]*>)*)\.(?!\.)")


_PARSED: dict[str, list[tuple[str, str | None]]] = {}


def _parsed(template: str) -> list[tuple[str, str | None]]:
    """The template's parts, each a literal and the format string of the field after it
    (None: none), parsed once per template (a card's texts are filled at every update)."""
    parts = _PARSED.get(template)
    if parts is None:
        parts = _PARSED[template] = [
            (literal, None if field is None else
             "{" + field + ("!" + conv if conv else "") + (":" + spec if spec else "") + "}")
            for literal, field, spec, conv in _FORMATTER.parse(template)]
    return parts


def t(key: str, **kwargs: Any) -> str:
    """The text ``key`` with its fields filled in (escaped unless ``Raw``). A value that
    ends with a full stop ("Drs. A. Rahman, M.M.") takes the place of the template's own
    full stop right after it, so a sentence never ends in "M.M.."."""
    template = TEXTS[key]
    safe = {k: v if isinstance(v, Raw) else html.escape(str(v), quote=False)
            for k, v in kwargs.items()}
    out: list[str] = []
    dotted = False
    for literal, field in _parsed(template):
        if dotted and literal:
            literal = _DOT_AFTER.sub(r"\1", literal, count=1) \
                if _DOT_AFTER.match(literal) else literal
        out.append(literal)
        if field is None:
            continue
        value = field.format(**safe)
        out.append(value)
        dotted = _TAGS.sub("", value).endswith(".")
    return "".join(out)


UNIT_KINDS = ("bidang", "sekretariat", "bagian", "subbagian", "sub", "seksi", "upt", "uptd",
              "balai", "unit", "kantor", "dinas", "badan")


def unit_name(name: str) -> str:
    """A unit as a sentence names it, in the case it was typed: "Perindustrian" becomes
    "Bidang Perindustrian"; "Bidang Perindustrian" or "Sekretariat" stay as they are
    (never "Bidang Bidang ...")."""
    clean = " ".join(str(name).split())
    first = clean.split(" ", 1)[0].rstrip(".").casefold() if clean else ""
    return clean if first in UNIT_KINDS else f"Bidang {clean}".strip()


def kabid_title(unit_name_: str) -> str:
    """The Kabid's position: "Kepala Bidang Perindustrian" (never "Kepala Bidang
    (Bidang Perindustrian)")."""
    return f"{ROLE_TITLES[Role.KABID].split()[0]} {unit_name(unit_name_)}"


def role_title(role: Role | str) -> str:
    return ROLE_TITLES[Role(role)]


def duration_text(minutes: int, day_minutes: int) -> str:
    """Working time in words: "2 hari 3 jam", "25 menit"."""
    from reports.numbers import format_duration

    return format_duration(minutes, day_minutes)


# documents, sign-off, numbering, archive, delivery and verification (steps 6-11)
TEXTS.update({
    "g.compiling": "Menyusun dokumen {period}... mohon tunggu.",
    "g.compiled": "Dokumen {period} versi {version} selesai disusun.",
    "g.compile_busy": "Dokumen {period} sedang disusun. Hasilnya akan dikirim ke sini; mohon tunggu.",
    "g.compile_failed": "Dokumen gagal disusun. Silakan coba lagi; bila berulang, hubungi admin kantor.",
    "g.summary_head": "<b>Pengukuran Kinerja</b> - {period} (versi {version})",
    "g.summary_counts": (
        "{total} indikator: {reached} mencapai target, {not_reached} belum mencapai, "
        "{no_data} belum ada data."
    ),
    "g.summary_average": "Rata-rata capaian: <b>{average}</b>",
    "g.summary_lowest": "Capaian terendah:",
    "g.summary_line": "- {name}: {percent}",
    "g.compile_hint": (
        "Periksa berkasnya. Untuk memperbaiki angka, unduh workbook, ubah kolom Target, "
        "Realisasi atau Keterangan, lalu kirim kembali berkas .xlsx itu ke sini. "
        "Bila sudah benar, tekan <b>Ajukan untuk paraf</b>."
    ),
    "g.uploaded_head": "Workbook yang Anda kirim telah dibaca: dokumen versi {version} dibuat dari isinya.",
    "g.upload_building": "Workbook Anda telah dibaca. Menyusun dokumen {period} dari isinya... mohon tunggu.",
    "g.upload_warnings": "Mohon periksa pembacaan berikut:\n{lines}",
    "g.upload_xlsx_only": "Kirim workbook .xlsx hasil unduhan dari bot (bukan foto atau berkas lain).",
    "g.upload_unreadable": "Workbook tidak dapat dibaca: {error}",
    "g.upload_errors": (
        "<b>Workbook belum dapat dipakai</b>, tidak ada yang disimpan. {count} kesalahan:\n"
        "{lines}\n\nPerbaiki lalu kirim kembali berkasnya."
    ),
    "g.upload_more_errors": "... dan {count} kesalahan lain.",
    # uploads: limits checked before a workbook is opened, quota per person per cycle
    "u.xlsx_too_large_bytes": (
        "Workbook terlalu besar: isinya {size} MB setelah diekstrak, batasnya {limit} MB. "
        "Tidak ada yang disimpan. Hapus lembar atau baris yang tidak perlu, lalu kirim lagi."
    ),
    "u.xlsx_too_many_cells": (
        "Workbook terlalu besar: berisi lebih dari {limit} sel (batas jumlah sel). "
        "Tidak ada yang disimpan. Hapus lembar atau baris yang tidak perlu, lalu kirim lagi."
    ),
    "u.setup_too_many_rows": (
        "Lembar {sheet} berisi {rows} baris data, paling banyak {limit} baris "
        "([uploads] max_setup_rows). Tidak ada yang disimpan."
    ),
    "u.quota_bytes": (
        "Kuota unggahan Anda untuk siklus ini sudah penuh: terpakai {used} MB dari {limit} MB, "
        "berkas ini {size} MB. Berkas tidak disimpan. Hubungi admin kantor bila perlu "
        "kuota lebih besar."
    ),
    "u.quota_files": (
        "Kuota unggahan Anda untuk siklus ini sudah penuh: {used} dari {limit} berkas. "
        "Berkas tidak disimpan. Hubungi admin kantor bila perlu kuota lebih besar."
    ),
    "u.document_versions": (
        "Batas versi dokumen untuk siklus ini sudah tercapai: {count} dari {limit} versi. "
        "Dokumen tidak disusun ulang dan tidak ada yang disimpan. Ajukan versi terakhir "
        "untuk paraf, atau hubungi admin kantor bila perlu batas yang lebih besar."
    ),
    "g.text_in_compile": "Saya menunggu workbook .xlsx yang sudah diperbaiki, atau tekan tombol <b>Ajukan untuk paraf</b>.",
    "g.submitted": "Dokumen versi {version} diajukan kepada <b>{name}</b> untuk paraf. Batas waktu: {due}",
    "g.initialled": "✅ Diparaf oleh {name} pada {time}.",
    "g.signed": "✅ Ditandatangani oleh {name} pada {time}.",
    "g.initialled_short": "Dokumen telah diparaf.",
    "g.signed_short": "Dokumen telah ditandatangani.",
    "g.already_initialled": "Dokumen versi {version} sudah Anda paraf pada {time}.",
    "g.already_signed": "Dokumen versi {version} sudah Anda tandatangani pada {time}.",
    "g.next_holder": "Dokumen diteruskan kepada <b>{name}</b>. Batas waktu: {due}",
    "g.ask_reason": "Tulis alasan pengembalian dokumen versi {version} untuk Kasubag Perencanaan (balas pesan ini):",
    "g.reason_length": "Alasan harus diisi, paling banyak {limit} karakter. Silakan tulis ulang (balas pesan ini):",
    "g.returned": "↩️ Dokumen versi {version} dikembalikan kepada <b>{name}</b> dengan alasan: {reason}",
    "g.numbered": (
        "Dokumen diberi nomor <b>{number}</b> tanggal {date}.\n"
        "Kode verifikasi: <code>{code}</code>\n"
        "Dokumen final (bernomor, dengan kode QR) terlampir."
    ),
    "g.numbered_card": "✅ Diberi nomor {number} oleh {name} pada {time}.",
    "g.numbering": "⏳ Memberi nomor dan menyusun dokumen final {period}... mohon tunggu.",
    "g.numbering_done": "Dokumen final {period} bernomor {number} selesai disusun.",
    "g.numbering_busy": "Nomor dan dokumen final {period} sedang disiapkan. Dokumen final akan dikirim ke sini; mohon tunggu.",
    "g.numbering_failed": (
        "Dokumen final gagal disusun; nomor belum diberikan. Silakan tekan <b>Beri nomor</b> "
        "lagi; bila berulang, hubungi admin kantor."
    ),
    "g.already_numbered": "Dokumen ini sudah diberi nomor {number}.",
    "g.archived": "Dokumen diperiksa dan diarsipkan. Tugas penyampaian dikirim kepada <b>{name}</b>.",
    "g.archived_card": "✅ Diarsipkan oleh {name} pada {time}.",
    "g.delivery_sent": (
        "Dokumen dikirim kepada {contact} ({agency}) melalui bot. "
        "Tanda terima tercatat setelah penerima menekan <b>Konfirmasi terima</b>."
    ),
    "g.ask_receipt_photo": (
        "Penyampaian ke <b>{agency}</b>: kirim foto tanda terima yang sudah ditandatangani "
        "penerima. Tulis nama penerima sebagai keterangan (caption) foto; bila kosong "
        "dicatat sebagai \"{default}\"."
    ),
    "g.receiver_default": "Petugas penerima {agency}",
    "g.receipt_photo_only": "Kirim foto (atau PDF) tanda terima yang sudah ditandatangani.",
    "g.receipt_recorded": "Tanda terima dari <b>{agency}</b> dicatat (diterima oleh {received_by}).",
    "g.receipt_confirmed": "✅ Penerimaan dikonfirmasi oleh {name} pada {time}. Terima kasih.",
    "g.already_received": "Penerimaan dokumen ini sudah dicatat.",
    "g.receipt_document": (
        "Tanda terima dari <b>{agency}</b> telah dicatat (diterima oleh {received_by}). "
        "Dokumen tanda terima terlampir."
    ),
    "g.receipt_by_contact": "Dikonfirmasi oleh penerima melalui bot",
    "g.receipt_by_photo": "Foto tanda terima bertanda tangan, dicatat oleh staf",
    "g.deliveries_left": "Masih ada OPD yang belum menerima dokumen:",
    "g.deliveries_done": "Semua OPD telah menerima dokumen.",
    "g.deliveries_all_sent": (
        "✅ Dokumen telah disampaikan kepada semua OPD; langkah 11 selesai. Tanda terima "
        "ditunggu dari: {agencies} (kontak OPD diingatkan oleh bot)."
    ),
    "g.cek_usage": "Kirim /cek KODE, misalnya /cek ABCD-EFGH (kode verifikasi tercetak di dokumen).",
    "g.cek_genuine": (
        "✅ <b>Dokumen asli</b>: kode ini diterbitkan oleh bot ini.\n"
        "Kode verifikasi: <code>{code}</code>\n"
        "Nomor surat: {number}\nTanggal surat: {date}\n"
        "Ditandatangani oleh: {signer}\nWaktu tanda tangan: {signed_at}{paraf}\n"
        "Versi yang disetujui: {approved_version}, SHA-256 PDF: <code>{approved_sha256}</code>\n"
        "Versi final bernomor: {version}, SHA-256 PDF: <code>{sha256}</code>\n"
        "{signature}\n"
        "<i>Cocokkan SHA-256 PDF yang Anda terima dengan versi final di atas; bila berbeda, "
        "isinya bukan dokumen yang diterbitkan.</i>"
    ),
    "g.cek_not_found": (
        "❌ Kode <code>{code}</code> tidak ditemukan. Dokumen dengan kode ini tidak "
        "diterbitkan oleh bot ini; periksa penulisan kodenya."
    ),
    "b.submit": "Ajukan untuk paraf",
    "b.recompile": "Susun ulang",
})


# office administration: people, acting officials (Plh./Plt.), reassigning tasks
TEXTS.update({
    "a.range": "{start} s.d. {end}",
    "a.decree": " (surat perintah {decree})",
    "a.err_range_format": (
        "Rentang tanggal tidak terbaca. Tulis misalnya <code>14-10-2024 s.d. 16-10-2024</code> "
        "(satu tanggal untuk satu hari)."
    ),
    "a.err_range_order": "Tanggal selesai tidak boleh sebelum tanggal mulai.",
    "a.err_range_past": "Rentang tanggal itu sudah lewat.",
    "a.err_no_nip": "Tidak ada pegawai dengan NIP {nip}.",
    "a.err_no_unit": "Bidang '{code}' tidak dikenal. Kode bidang: {codes}.",
    "a.err_name": "Nama pegawai wajib diisi.",
    "a.err_nip_format": "NIP {nip} tidak sah: NIP terdiri dari 18 angka.",
    "a.err_unit_needed": "Peran {role} harus ditempatkan pada sebuah bidang.",
    "a.err_nip_taken": "NIP {nip} sudah dipakai oleh {name}.",
    "a.err_inactive_person": "{name} sudah tidak aktif.",
    "a.err_no_successor": (
        "{name} masih memegang tugas terbuka dan tidak ada pengganti bawaan. "
        "Pilih siapa yang mengambil alih tugasnya."
    ),
    "a.err_successor": "{name} tidak dapat menerima tugas ini (tidak aktif atau perannya tidak sesuai).",
    "a.err_reason": "Alasan harus salah satu dari: {reasons}.",
    "a.err_deactivate_self": "Anda tidak dapat menonaktifkan akun Anda sendiri.",
    "a.err_same_holder": "Tugas ini sudah dipegang oleh {name}.",
    "a.err_item_staff": "{name} bukan staf aktif bidang indikator ini.",
    "a.err_role_appoint": (
        "Plh./Plt. hanya untuk Kepala Dinas, Sekretaris, Kasubag Perencanaan atau Kepala Bidang."
    ),
    "a.err_absent_role": "{name} bukan pejabat {title}.",
    "a.err_self": "{name} adalah pejabat {title} sendiri; tunjuk pegawai lain sebagai Plh./Plt.",
    "a.err_acting": "{name} tidak dapat ditunjuk (tidak aktif atau bukan pegawai dinas).",
    "a.err_overlap": (
        "Penunjukan ditolak: sudah ada {kind} {title} ({name}) untuk {range}. "
        "Rentang penunjukan tidak boleh tumpang tindih; batalkan penunjukan itu dulu."
    ),
    "a.err_acting_away": "{name} sendiri berhalangan pada {range}, sehingga tidak dapat ditunjuk.",
    "a.why_change": "perubahan jabatan {name}",
    "a.why_deactivate": "{name} nonaktif, {reason}",
    "a.why_reassign": "dialihkan oleh {name}",
    "a.why_acting": "penunjukan {kind} {title}",
    "a.why_acting_end": "masa {kind} {title} berakhir",
    "a.n_task_to": (
        "<b>Tugas dialihkan kepada Anda</b> ({why})\n"
        "Langkah {step}: {activity}\n{period}{where}\n"
        "Sebelumnya dipegang: {old}\nBatas waktu: {due}"
    ),
    "a.n_task_from": (
        "Tugas langkah {step} ({activity}, {period}{where}) kini dipegang {new} ({why}). "
        "Tombol lama untuk tugas ini tidak berlaku lagi."
    ),
    "a.n_item_to": "<b>Indikator diserahkan kepada Anda</b> oleh {name}: {indicator} ({period}). Batas waktu: {due}",
    "a.n_item_from": "Indikator {indicator} ({period}) kini diisi oleh {new}.",
    "a.n_done_in_name": "{kind} {name} telah {verb} langkah {step} ({activity}) {period} atas nama Anda.",
    "a.n_deactivated": (
        "Akun Anda di bot ini dinonaktifkan ({reason}). Tugas terbuka Anda telah dialihkan. "
        "Terima kasih atas kerja sama Anda."
    ),
    "a.n_appointed": (
        "<b>Penunjukan {kind} {title}</b>\n"
        "Anda ditunjuk sebagai {kind} {title} untuk {range}{decree}, menggantikan {absent}.\n"
        "Selama masa itu tugas, pengingat dan tombol jabatan tersebut datang kepada Anda; "
        "dokumen yang Anda tandatangani tercetak \"{kind} {title}\" dengan nama dan NIP Anda."
    ),
    "a.n_appointed_absent": (
        "{name} ditunjuk sebagai {kind} {title} untuk {range}. Selama itu tugas Anda "
        "dijalankan olehnya; Anda diberi tahu setiap langkah yang diselesaikan atas nama Anda "
        "dan tetap dapat melihat perkembangannya."
    ),
    "a.n_cancelled": "Penunjukan Anda sebagai {kind} {title} dibatalkan. Tugas yang masih terbuka dikembalikan.",
    "a.n_acting_over": "Masa tugas Anda sebagai {kind} {title} berakhir. {count} tugas terbuka dikembalikan kepada pejabatnya.",
    "a.appt_line": "• {kind} {title}: {name} (menggantikan {absent}), {range}{decree} - {state}",
    "a.appt_running": "sedang berjalan",
    "a.appt_planned": "terjadwal",
    "a.roster_head": "<b>Daftar pegawai {office}</b>\n{count} pegawai aktif, {registered} terdaftar di bot.",
    "a.roster_no_unit": "Pimpinan dan lainnya",
    "a.roster_group": "{name}",
    "a.roster_line": "• {name} - {role} - {state}",
    "a.reg_yes": "terdaftar",
    "a.reg_no": "belum terdaftar",
    "a.roster_acting": "\n   ↳ sedang menjadi {kind} {title}",
    "a.roster_absent": "\n   ↳ berhalangan; {kind}: {name}",
    "a.roster_inactive": "{count} pegawai nonaktif (mutasi/pensiun) tidak ditampilkan.",
    "a.appts_head": "Penunjukan Plh./Plt.",
    # bot UI
    "a.b_deactivate": "Nonaktifkan pegawai",
    "a.b_appoint": "Tunjuk Plh./Plt.",
    "a.b_cancel_appt": "Batalkan {kind} {title}",
    "a.b_cancel": "Batal",
    "a.b_save": "Simpan",
    "a.b_default": "{name} (bawaan)",
    "a.b_plh": "Plh. (berhalangan sementara)",
    "a.b_plt": "Plt. (jabatan kosong/lama)",
    "a.b_reason_mutasi": "Mutasi",
    "a.b_reason_pensiun": "Pensiun",
    "a.b_reason_lainnya": "Lainnya",
    "a.pick_person": "Pilih pegawai yang dinonaktifkan (mutasi/pensiun):",
    "a.pick_successor": (
        "<b>{name}</b> masih memegang {runs} tugas dan {items} indikator terbuka. "
        "Siapa yang mengambil alih? Pilihan pertama adalah bawaan."
    ),
    "a.pick_reason": "Nonaktifkan <b>{name}</b>{successor}? Pilih alasannya:",
    "a.successor_note": "; tugasnya dialihkan kepada {name}",
    "a.deactivated": "✅ {name} dinonaktifkan ({reason}). {runs} tugas dan {items} indikator dialihkan kepada {successor}.",
    "a.deactivated_plain": "✅ {name} dinonaktifkan ({reason}).",
    "a.pick_slot": "Jabatan mana yang diisi Plh./Plt.?",
    "a.pick_acting": "Siapa yang ditunjuk sebagai pelaksana <b>{title}</b>{absent}?",
    "a.absent_note": " (pejabat: {name})",
    "a.pick_kind": "Jenis penunjukan {name} sebagai pelaksana {title}?",
    "a.ask_range": "Kirim rentang tanggal ({zone}), misalnya <code>{example}</code>. Satu tanggal untuk satu hari.",
    "a.ask_decree": "Nomor surat perintah Plh./Plt.? Kirim <code>-</code> bila tidak ada.",
    "a.confirm": "<b>Periksa penunjukan</b>\n{kind} {title}: {name}\nMenggantikan: {absent}\nMasa: {range}{decree}",
    "a.appointed": "✅ {kind} {title} disimpan: {name}, {range}. Yang bersangkutan dan pejabatnya telah diberi tahu.",
    "a.appt_cancelled": "Penunjukan {kind} {title} ({name}) dibatalkan.",
    "a.flow_cancelled": "Dibatalkan, tidak ada yang disimpan.",
    "a.pick_run": "Pilih tugas terbuka yang akan dialihkan:",
    "a.no_runs": "Tidak ada tugas terbuka yang dapat Anda alihkan.",
    "a.run_label": "{step}. {activity}{unit} - {name}",
    "a.pick_to": "Alihkan langkah {step} ({activity}{unit}, kini dipegang {name}) kepada siapa?",
    "a.reassigned": "✅ Langkah {step} dialihkan kepada {name}. Keduanya telah diberi tahu.",
})
TEXTS.update({
    # the regency admin's /kantor (bot.core.regency)
    "k.refused": (
        "Maaf, /kantor hanya untuk admin kabupaten (yang menambah kantor/OPD).\n"
        "Bila Anda admin kabupaten, minta operator server menambahkan ID Telegram Anda "
        "<code>{user_id}</code> ke [regency] admins di config.toml."
    ),
    "k.head": "🏛 <b>Kantor di {regency}</b> ({count} kantor)",
    "k.row": (
        "\n<b>{name}</b>\nKode unit {code} · {zone} · pegawai terdaftar {registered} dari "
        "{people} · siklus berjalan {cycles}"
    ),
    "k.none": "Belum ada kantor.",
    "k.how_add": (
        "\nTambah kantor: /kantor tambah KODE_UNIT ZONA Nama Kantor\n"
        "(ZONA: WIB, WITA atau WIT), mis. <code>/kantor tambah II.09 WIB Dinas Kesehatan</code>"
    ),
    "k.usage": (
        "Tulis: /kantor tambah KODE_UNIT ZONA Nama Kantor\n"
        "(ZONA: WIB, WITA atau WIT), mis. <code>/kantor tambah II.09 WIB Dinas Kesehatan</code>"
    ),
    "k.added": (
        "✅ Kantor ditambahkan: <b>{name}</b> (kode unit {code}, {zone}).\n"
        "Bidang dan pegawainya diisi operator server dari workbook penyiapan "
        "(sopbot setup import), atau satu per satu (sopbot people add --kantor {code}); "
        "admin kantor: --role admin."
    ),
    "k.error": "Kantor tidak ditambahkan: {error}",
})

TEXTS["h.admin"] = (
    "/pegawai - daftar pegawai per bidang, status pendaftaran dan Plh./Plt.; menonaktifkan "
    "pegawai (mutasi/pensiun) dan menunjuk Plh./Plt.\n/status - papan status semua siklus"
)
for _role in ("h.kadis", "h.sekretaris"):
    TEXTS[_role] += "\n/pegawai - daftar pegawai dan Plh./Plt.\n/alihkan - alihkan tugas terbuka kepada pegawai lain"
TEXTS["h.kadis"] += " (juga menunjuk Plh./Plt. lewat /pegawai)"
TEXTS["h.kasubag"] += "\n/alihkan - alihkan tugas pengisian data (langkah 4) kepada pegawai lain"


# signing authority (bot/core/authority.py): who may hold a step, checked at every move and action
TEXTS.update({
    "au.who_collect": "{title} atau staf bidang itu",
    "au.who_staf_sekretariat": "staf Sekretariat",
    # shown as an alert too (at most 200 characters): the reason first, the name last
    "au.err_cannot_hold": (
        "Ditolak: langkah {step} hanya dapat dipegang {who}, atau Plh./Plt. jabatan itu yang "
        "sedang ditunjuk. {name} tidak memenuhi syarat itu; tidak ada yang diubah."
    ),
    "au.err_lapsed": (
        "Maaf, Anda tidak berwenang (lagi): langkah {step} hanya untuk {who}, atau Plh./Plt. "
        "jabatan itu yang sedang ditunjuk saat ini."
    ),
    "au.err_no_eligible": (
        "Tidak ada pegawai lain yang dapat memegang langkah {step}: langkah ini hanya untuk "
        "{who}, atau Plh./Plt. jabatan itu yang sedang ditunjuk."
    ),
    "au.person_as": "{name} selaku {capacity}",
    "au.cek_paraf": "\nDiparaf oleh: {paraf}",
})


# paging of long lists (bot/render.py)
TEXTS.update({
    "p.prev": "\u2039 Sebelumnya",
    "p.next": "Berikutnya \u203a",
    "p.page": "<i>Halaman {page} dari {pages}</i>",
    "n.assignment": (
        "{sender} menyerahkan pengisian indikator <b>{indicator}</b> ({period}) kepada Anda. "
        "Batas waktu: {due}"
    ),
    "d.coord_unit": "{mark} <b>{unit}</b>: {count} indikator",
    "d.coord_item": "      - {name} ({uom}): target {target}",
    "d.coord_unit_off": "{mark} {unit}: {count} indikator (tidak diminta)",
    "s.board_step": "{mark} {step}. {activity}{holder}",
    "s.board_unit": "    • {unit}: {state}{late}",
})


# electronic signature (PAdES) and verification (issue 14)
TEXTS.update({
    "sig.failed": (
        "⚠️ Dokumen belum dinomori: {reason} Tidak ada nomor surat yang terpakai. Coba lagi "
        "nanti, atau minta admin memeriksa sertifikat tanda tangan ([signing] di config.toml)."
    ),
    "sig.valid": (
        "🔏 Tanda tangan elektronik (PAdES): <b>sah</b>, PDF tidak berubah sejak ditandatangani, "
        "sertifikat: {subject} (sidik jari SHA-256 <code>{fingerprint}</code>)."
    ),
    "sig.untrusted": (
        "🔏 Tanda tangan elektronik (PAdES): PDF tidak berubah sejak ditandatangani, tetapi "
        "sertifikat {subject} (sidik jari SHA-256 <code>{fingerprint}</code>) tidak berakar "
        "pada sertifikat tepercaya yang dikonfigurasi ([signing] trust_roots)."
    ),
    "sig.broken": "❌ Tanda tangan elektronik (PAdES): <b>TIDAK sah</b> ({detail}).",
    "sig.none": "PDF final ini <b>tidak</b> memuat tanda tangan elektronik.",
    "sig.unchecked": "Tanda tangan elektronik: {signature}",
    # the TTE gateway in the chat: the signer's passphrase (bot/core/secret_input.py)
    "tte.ask": (
        "🔐 <b>Tanda tangan elektronik (TTE)</b> dokumen versi {version}.\n"
        "Kirim <b>passphrase TTE</b> Anda sebagai balasan pesan ini. Pesan itu langsung "
        "saya hapus dan passphrase tidak disimpan di mana pun.\n"
        "Saat Anda menandatangani, dokumen otomatis diberi nomor surat berikutnya "
        "(nomor harus sudah ada di PDF sebelum TTE). Ketik /batal untuk membatalkan."
    ),
    "tte.ask_again": "Kirim passphrase TTE sekali lagi (balas pesan ini), atau /batal.",
    "tte.empty": "Passphrase kosong. Kirim passphrase TTE Anda (balas pesan ini), atau /batal.",
    "tte.lost": (
        "Passphrase Anda tidak sempat dipakai karena bot dimulai ulang, dan passphrase "
        "memang tidak pernah disimpan. Dokumen belum ditandatangani. Kirim passphrase TTE "
        "sekali lagi (balas pesan ini), atau /batal."
    ),
    "tte.no_nik": (
        "NIK Anda untuk TTE belum dicatat ([signing] gateway_nik di config.toml, NIP "
        "{nip}). Minta admin kantor mencatatnya, lalu tekan <b>Tandatangani</b> lagi."
    ),
    "tte.failed": "⚠️ {reason}",
    "tte.try_later": (
        "Tidak ada nomor surat yang terpakai dan langkah tanda tangan tetap terbuka. Tekan "
        "<b>Tandatangani</b> pada kartu dokumen lagi bila layanan TTE sudah pulih."
    ),
    "tte.signing": "⏳ Menandatangani dokumen melalui layanan TTE…",
    "tte.signing_done": (
        "✅ Selesai: dokumen ditandatangani dengan TTE dan diberi nomor <b>{number}</b>."
    ),
    "tte.busy": (
        "⏳ Dokumen sedang ditandatangani dengan passphrase yang Anda kirim sebelumnya; "
        "tunggu hasilnya. Pesan Anda barusan sudah saya hapus."
    ),
    "tte.busy_press": (
        "⏳ Dokumen ini sedang ditandatangani dengan passphrase yang Anda kirim; tunggu "
        "hasilnya."
    ),
    "tte.lost_job": (
        "Dokumen belum ditandatangani dan belum diberi nomor: bot dimulai ulang sebelum "
        "penandatanganan berjalan, dan passphrase memang tidak pernah disimpan. Tekan "
        "<b>Tandatangani</b> pada kartu dokumen lagi, lalu kirim passphrase TTE Anda "
        "sekali lagi."
    ),
    "tte.error": (
        "⚠️ Dokumen belum dapat ditandatangani karena kesalahan pada bot. Tidak ada nomor "
        "surat yang terpakai dan langkah tanda tangan tetap terbuka; tekan "
        "<b>Tandatangani</b> lagi nanti."
    ),
    "tte.signed": (
        "✅ Dokumen ditandatangani secara elektronik (TTE) dan diberi nomor "
        "<b>{number}</b> tanggal {date}.\nKode verifikasi: <code>{code}</code>\n"
        "Dokumen final terlampir."
    ),
    "tte.signed_card": "✅ Ditandatangani (TTE) oleh {name} pada {time}.",
    "n.numbered_at_signature": (
        "Dokumen {period} diberi nomor <b>{number}</b> secara otomatis saat {signer} "
        "menandatanganinya dengan TTE. Langkah penomoran sudah selesai; tidak perlu "
        "menekan apa pun."
    ),
})

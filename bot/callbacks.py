"""The one codec for inline-button callback data: ``action:id[:id...]``.

Callback data is untrusted input: ``decode`` accepts only known actions with the right
number of integer arguments, and the handlers still check who may press what.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_BYTES = 64

# action -> (number of integer arguments, meaning)
ACTIONS: dict[str, tuple[int, str]] = {
    "dsp": (1, "terima dan teruskan disposisi (step run)"),
    "crd": (1, "buka koordinasi bidang (step run)"),
    "crdok": (1, "kirim permintaan data ke bidang (step run)"),
    "crdu": (2, "pilih/batal pilih bidang (step run, unit)"),
    "crdd": (2, "pilih batas waktu hari kerja (step run, hari)"),
    "crdp": (2, "halaman kartu koordinasi (step run, halaman)"),
    "ent": (1, "mulai/lanjut isi data (step run)"),
    "eskip": (1, "lewati indikator (step run)"),
    "eback": (1, "kembali ke indikator sebelumnya (step run)"),
    "ecanc": (1, "batalkan pengisian (step run)"),
    "eok": (1, "ya, nilai janggal itu benar (step run)"),
    "eno": (1, "ulangi nilai (step run)"),
    "epick": (2, "pilih bacaan angka yang dimaksud (step run, bacaan 0/1)"),
    "esum": (1, "ringkasan sebelum kirim (step run)"),
    "esend": (1, "kirim data bidang ke Kasubag (step run)"),
    "eassign": (2, "serahkan indikator ke staf (step run, cycle indicator)"),
    "eto": (3, "serahkan indikator ke orang (step run, cycle indicator, person)"),
    "enext": (1, "lanjut ke indikator berikutnya / tetap pakai jawaban (step run)"),
    "enote": (1, "tambah catatan pada jawaban (step run)"),
    "ewhy": (1, "lewati pertanyaan analisis capaian (step run)"),
    "egoto": (2, "ubah indikator tertentu dari ringkasan (step run, cycle indicator)"),
    "ehand": (1, "daftar indikator untuk diserahkan ke staf (step run)"),
    "edone": (1, "staf selesai mengisi indikatornya (step run)"),
    "epage": (2, "halaman ringkasan / daftar serah indikator (step run, halaman)"),
    "eview": (2, "lihat data bidang (cycle, unit)"),
    "evpg": (3, "halaman data bidang (cycle, unit, halaman)"),
    "clsok": (1, "ya, tutup pengumpulan (cycle)"),
    "clsno": (1, "batal menutup pengumpulan (cycle)"),
    "rtn": (2, "kembalikan data bidang (cycle, unit)"),
    "rti": (2, "kembalikan jawaban tertentu: buka pilihan (cycle, unit)"),
    "rtip": (3, "kembalikan jawaban tertentu: halaman (cycle, unit, halaman)"),
    "rtis": (3, "kembalikan jawaban tertentu: pilih/batal pilih (cycle, unit, cycle indicator)"),
    "rtiok": (2, "kembalikan jawaban yang dipilih (cycle, unit)"),
    "rtix": (2, "batal mengembalikan jawaban (cycle, unit)"),
    "cls": (1, "tutup pengumpulan (cycle)"),
    "proc": (1, "selesai mengolah data (step run)"),
    "cmp": (1, "susun dokumen (step run)"),
    "subm": (2, "ajukan dokumen untuk paraf (step run, document)"),
    "prf": (2, "paraf (step run, document)"),
    "sgn": (2, "tandatangani (step run, document)"),
    "ret": (2, "kembalikan dokumen (step run, document)"),
    "num": (1, "beri nomor (step run)"),
    "arc": (1, "arsipkan (step run)"),
    "dlv": (1, "catat penyampaian (delivery)"),
    "rcv": (1, "konfirmasi terima (delivery)"),
    "start": (3, "mulai siklus (jenis 1=triwulan 2=tahunan, tahun, triwulan)"),
    "startk": (4, "mulai siklus di kantor (jenis 1=triwulan 2=tahunan, tahun, triwulan, kantor)"),
    "task": (1, "buka tugas (step run)"),
    # an account bound in several offices: the office a command acts in (handlers/common.py)
    "ofc": (2, "pilih kantor untuk perintah (perintah 1=mulai 2=pegawai 3=alihkan, kantor)"),
    # office administration (handlers/admin.py)
    "pgw": (2, "menu pegawai (pilihan 1=nonaktifkan 2=tunjuk Plh./Plt. 9=tutup, kantor)"),
    "pgx": (1, "pilih pegawai yang dinonaktifkan (person)"),
    "pgxl": (2, "halaman daftar pegawai yang dapat dinonaktifkan (kantor, halaman)"),
    "pgxp": (2, "halaman daftar pengganti (person, halaman)"),
    "pgxs": (2, "pilih pengganti (person, pengganti; 0 = tanpa tugas)"),
    "pgxr": (3, "nonaktifkan (person, pengganti, alasan 1=mutasi 2=pensiun 3=lainnya)"),
    "plhr": (2, "Plh./Plt.: pilih jabatan (peran 1=kadis 2=sekretaris 3=kasubag 4=kabid, unit)"),
    "plhl": (1, "Plh./Plt.: halaman daftar pelaksana (halaman)"),
    "plhp": (1, "Plh./Plt.: pilih pelaksana (person)"),
    "plhk": (1, "Plh./Plt.: jenis (1=Plh. 2=Plt.)"),
    "plhok": (1, "Plh./Plt.: simpan (1) atau batal (0)"),
    "plhx": (1, "batalkan penunjukan Plh./Plt. (appointment)"),
    "alh": (1, "alihkan tugas: pilih tugas (step run)"),
    "alhl": (2, "alihkan tugas: halaman daftar penerima (step run, halaman)"),
    "alhp": (2, "alihkan tugas kepada (step run, person)"),
}


# what an argument of an action names, read from its meaning in ACTIONS (the names in
# its parentheses): the office of an account bound in several offices is the office of
# the first such object
_TARGETS = {"step run": "run", "cycle": "cycle", "delivery": "delivery", "person": "person",
            "appointment": "appointment", "kantor": "office"}


def _arg_names(meaning: str) -> list[str]:
    if "(" not in meaning:
        return []
    inside = meaning[meaning.index("(") + 1:meaning.rindex(")")]
    return [name.strip() for name in inside.split(",")]


def target(cb: "Callback") -> tuple[str, int] | None:
    """``("run" | "cycle" | "delivery" | "person" | "appointment" | "office", id)`` of a
    button, or None (a page, a choice within a conversation)."""
    for i, name in enumerate(_arg_names(ACTIONS[cb.action][1])):
        kind = _TARGETS.get(name)
        if kind is not None and i < len(cb.args):
            return kind, cb.args[i]
    return None


class InvalidCallback(ValueError):
    """Callback data that this bot did not make."""


@dataclass(frozen=True)
class Callback:
    action: str
    args: tuple[int, ...]

    def arg(self, i: int) -> int:
        return self.args[i]


def encode(action: str, *args: int) -> str:
    count, _ = ACTIONS[action]
    if len(args) != count:
        raise ValueError(f"{action} takes {count} arguments, got {len(args)}")
    data = ":".join([action, *(str(int(a)) for a in args)])
    if len(data.encode()) > MAX_BYTES:
        raise ValueError("callback data over 64 bytes")
    return data


def decode(data: str | None) -> Callback:
    if not data or len(data.encode("utf-8", "replace")) > MAX_BYTES:
        raise InvalidCallback(data)
    parts = data.split(":")
    spec = ACTIONS.get(parts[0])
    if spec is None or len(parts) - 1 != spec[0]:
        raise InvalidCallback(data)
    try:
        args = tuple(int(p) for p in parts[1:])
    except ValueError:
        raise InvalidCallback(data) from None
    if any(a < 0 or a > 2**53 or str(a) != p for a, p in zip(args, parts[1:])):
        raise InvalidCallback(data)
    return Callback(parts[0], args)


def pattern(*actions: str) -> str:
    """An anchored regex for a CallbackQueryHandler of these actions."""
    return r"^(?:" + "|".join(actions) + r")(?::\d+)*$"

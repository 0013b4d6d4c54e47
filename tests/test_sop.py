"""The SOP definition file: parsed from the SOP's own words, broken files refused."""
from __future__ import annotations

import tomllib

import pytest

from bot.core.sop import PACKAGED_DEFINITION, SopDefinitionError, TimeStandard, parse_definition
from models.enums import Role


def test_packaged_definition_is_the_sop():
    from bot.core.sop import load_definition

    sop = load_definition()
    assert len(sop.steps) == 11
    assert [s.role for s in sop.steps] == [
        Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID, Role.KASUBAG, Role.KASUBAG,
        Role.SEKRETARIS, Role.KADIS, Role.STAF, Role.KASUBAG, Role.STAF]
    assert sop.total_text == "15 hari 1 jam 25 menit"  # "Jumlah Waktu Penyelesaian"
    assert sop.step(7).return_to == 6 and sop.step(8).return_to == 6
    assert sop.step(5).return_to == 4


@pytest.mark.parametrize("text, expected", [
    ("05 menit", (5, 5, "minutes")),
    ("30 menit", (30, 30, "minutes")),
    ("1-5 hari", (1, 5, "days")),
    ("1 – 5 hari", (1, 5, "days")),
    ("10 menit", (10, 10, "minutes")),
    ("2 jam", (2, 2, "hours")),
    ("1 s.d. 3 hari", (1, 3, "days")),
])
def test_time_standard_from_the_sop_words(text, expected):
    ts = TimeStandard.parse(text)
    assert (ts.minimum, ts.maximum, ts.unit) == expected


@pytest.mark.parametrize("text", ["", "lima menit", "5 minggu", "5-1 hari", "0 menit"])
def test_time_standard_refuses_nonsense(text):
    with pytest.raises(ValueError):
        TimeStandard.parse(text)


def _data():
    return tomllib.loads(PACKAGED_DEFINITION.read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["step"][3].__setitem__("time", "sebentar"), "langkah 4: kolom 'time'"),
    (lambda d: d["step"][6].__setitem__("role", "bupati"), "langkah 7: kolom 'role'"),
    (lambda d: d["step"][2].__setitem__("kind", "rapat"), "langkah 3: kolom 'kind'"),
    (lambda d: d["step"][4].pop("output"), "langkah 5: kolom 'output' wajib"),
    (lambda d: d["step"][7].__setitem__("return_to", 9), "langkah 8: kolom 'return_to'"),
    (lambda d: d["step"][1].__setitem__("number", 5), "kolom 'number' harus 2"),
    (lambda d: d["step"][0].__setitem__("warna", "merah"), "langkah 1: kolom 'warna' tidak dikenal"),
    (lambda d: d.pop("sop"), "[sop]"),
])
def test_broken_definition_names_step_and_field(mutate, message):
    data = _data()
    mutate(data)
    with pytest.raises(SopDefinitionError) as err:
        parse_definition(data, "sop.toml")
    assert message in str(err.value)


def test_office_can_use_its_own_definition(tmp_path):
    from bot.core.sop import load_definition

    text = PACKAGED_DEFINITION.read_text().replace('time = "30 menit"', 'time = "1 jam"')
    own = tmp_path / "sop-kami.toml"
    own.write_text(text)
    sop = load_definition(own)
    assert sop.step(3).time.unit == "hours" and sop.step(3).time.maximum == 1

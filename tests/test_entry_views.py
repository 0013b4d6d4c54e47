"""bot/core/data_entry.py: the bidang's indicator views are made when first asked for,
and the mapping answers as the dict of all of them did."""
from __future__ import annotations

import pytest

from bot.core.data_entry import _ITEM_COLUMNS, IndicatorView, _Indicators


def _row(indicator_id: int, name: str) -> tuple:
    ind = [None] * len(IndicatorView._fields)
    ind[IndicatorView._fields.index("id")] = indicator_id
    ind[IndicatorView._fields.index("name")] = name
    return (0,) * _ITEM_COLUMNS + tuple(ind)


def test_the_indicator_views_are_made_when_asked_for_and_answer_as_a_dict_of_all():
    names = {7: 'Jumlah "pelatihan" <kerja> & 🙂', 9: "x" * 120, 11: "Rp 1.234.567.890.123"}
    rows = [_row(i, n) for i, n in names.items()]
    eager = {r[_ITEM_COLUMNS]: IndicatorView._make(r[_ITEM_COLUMNS:]) for r in rows}
    lazy = _Indicators(rows)
    assert len(lazy._views) == 0  # nothing made yet
    assert lazy[9] == eager[9] and lazy[9].name == "x" * 120
    assert len(lazy._views) == 1
    assert 7 in lazy and 8 not in lazy and lazy.get(8) is None and lazy.get(7) == eager[7]
    with pytest.raises(KeyError):
        lazy[8]  # noqa: B018
    assert len(lazy) == 3 and sorted(lazy) == [7, 9, 11]
    assert dict(lazy.items()) == eager and list(lazy.values()) == [lazy[k] for k in lazy]

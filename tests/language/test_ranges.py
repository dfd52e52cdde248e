"""Source ranges: four ints in one tuple that behave as a (start, end) pair of positions."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from remapdsl.language.model import Position, Range

positions = st.builds(Position, st.integers(0, 10_000), st.integers(0, 500))


@given(positions, positions, positions, positions)
def test_ranges_order_and_compare_as_pairs_of_positions(a: Position, b: Position, c: Position, d: Position) -> None:
    r, s = Range(a, b), Range(c, d)
    assert (r.start, r.end) == (a, b)
    assert (r < s) == ((a, b) < (c, d))
    assert (r == s) == ((a, b) == (c, d))
    assert (hash(r) == hash(s)) or r != s


def test_a_range_survives_pickling_for_worker_processes() -> None:
    r = Range(Position(3, 4), Position(5, 6))
    copy = pickle.loads(pickle.dumps(r))
    assert copy == r and type(copy) is Range and copy.end == Position(5, 6)


def test_a_range_prints_as_its_one_based_start_and_reads_back_in_its_repr() -> None:
    r = Range.of(2, 7, 9)
    assert str(r) == "3:8"
    assert eval(repr(r)) == r
    assert r.contains(Position(2, 8)) and not r.contains(Position(2, 10))

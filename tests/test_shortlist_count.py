"""The fuzzy shortlist's C count (safetycheck/_shortlist.c) on small hand-made postings.

test_fast_reading compares it, through Matcher._shortlist, with the numpy reference on thousands of
real keys; these pin the rules one by one and its refusals of malformed input.
"""

import numpy as np
import pytest

from safetycheck._shortlist import top_shared


def ranks(*values):
    return np.array(values, dtype=np.int32)


IDENTITY = np.arange(10, dtype=np.int32)


def test_names_sharing_at_least_threshold_grams_in_ascending_ids():
    parts = [ranks(0, 1, 2, 5), ranks(1, 2, 5), ranks(2, 9)]
    assert top_shared(parts, IDENTITY, 0, 10, 2, 48) == [1, 2, 5]
    assert top_shared(parts, IDENTITY, 0, 10, 3, 48) == [2]
    assert top_shared(parts, IDENTITY, 0, 10, 4, 48) == []
    assert top_shared([], IDENTITY, 0, 10, 2, 48) == []


def test_ranks_are_read_relative_to_base_and_mapped_to_ids():
    order = np.array([7, 3, 9, 0, 4], dtype=np.int32)  # the id at each rank
    parts = [ranks(2, 3, 4), ranks(3, 4)]
    assert top_shared(parts, order, 2, 3, 2, 48) == [0, 4]  # ranks 3 and 4


def test_past_the_limit_the_most_shared_are_kept():
    parts = [ranks(0, 1, 2, 3), ranks(0, 1, 2, 3), ranks(3), ranks(3), ranks(2)]
    # counts: 0 -> 2, 1 -> 2, 2 -> 3, 3 -> 4
    assert top_shared(parts, IDENTITY, 0, 10, 2, 2) == [2, 3]
    assert top_shared(parts, IDENTITY, 0, 10, 2, 1) == [3]
    assert top_shared(parts, IDENTITY, 0, 10, 2, 0) == []


def test_a_tie_at_the_limit_goes_to_the_lower_id_not_the_lower_rank():
    order = np.array([8, 2, 6, 4], dtype=np.int32)
    parts = [ranks(0, 1, 2, 3), ranks(0, 1, 2, 3)]  # every name shares 2
    assert top_shared(parts, order, 0, 4, 2, 2) == [2, 4]
    assert top_shared(parts, order, 0, 4, 2, 3) == [2, 4, 6]


def test_many_hits_grow_the_list_past_its_first_size():
    everyone = np.arange(1000, dtype=np.int32)
    assert top_shared([everyone, everyone], everyone, 0, 1000, 2, 1000) == list(range(1000))
    assert top_shared([everyone, everyone], everyone, 0, 1000, 2, 5) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("parts, order, base, size, error", [
    ([ranks(10)], IDENTITY, 0, 10, ValueError),                  # a rank past the range
    ([ranks(1)], IDENTITY, 2, 5, ValueError),                    # a rank before base
    ([ranks(1)], IDENTITY, 5, 6, ValueError),                    # base + size past order
    ([np.array([1], dtype=np.int64)], IDENTITY, 0, 10, TypeError),  # not int32
    ([ranks(1, 2).reshape(1, 2)], IDENTITY, 0, 10, TypeError),   # not 1-D
    ([ranks(1, 2, 3)[::2]], IDENTITY, 0, 10, ValueError),        # not contiguous
    ([[1, 2]], IDENTITY, 0, 10, TypeError),                      # not a buffer
    ([ranks(1)], IDENTITY.astype(np.int64), 0, 10, TypeError),   # order not int32
    ([ranks(1)], IDENTITY, -1, 10, ValueError),
])
def test_malformed_input_is_refused_never_read_out_of_bounds(parts, order, base, size, error):
    with pytest.raises(error):
        top_shared(parts, order, base, size, 1, 48)


def test_threshold_below_one_is_refused():
    with pytest.raises(ValueError):
        top_shared([ranks(1)], IDENTITY, 0, 10, 0, 48)

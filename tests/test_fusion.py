"""The retrieval math of embeddings/fusion.py, on arrays small enough to check by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embeddings.fusion import (
    Weights,
    calibrate_threshold,
    fuse,
    maxsim,
    maxsim_in_place,
    normalize_by_max,
    rerank_with,
    segment_max,
    segment_rows,
    select_non_overlapping,
    should_abstain,
)


def unit(*rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def test_normalize_by_max_scales_to_one_and_keeps_all_zeros():
    assert normalize_by_max(np.array([1.0, 4.0, 2.0])).tolist() == [0.25, 1.0, 0.5]
    assert normalize_by_max(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert normalize_by_max(np.zeros(0)).size == 0


def test_segment_max_and_segment_rows_follow_the_lengths():
    values = np.array([1, 5, 2, 7, 3, 0])
    assert segment_max(values, np.array([2, 1, 3])).tolist() == [5, 2, 7]
    assert segment_rows(np.array([10, 3]), np.array([2, 3])).tolist() == [10, 11, 3, 4, 5]
    assert segment_rows(np.array([4, 9]), np.array([0, 2])).tolist() == [9, 10]  # empty segments vanish


def test_fuse_is_the_weighted_sum_with_bm25_scaled_to_the_best():
    weights = Weights(dense_passage=1.0, dense_sentence=0.5, dense_focus=0.25, bm25=2.0)
    scores = fuse(np.array([0.4, 0.2]), np.array([0.6, 0.8]), np.array([0.0, 0.4]), np.array([3.0, 6.0]), weights)
    assert np.allclose(scores, [0.4 + 0.3 + 0.0 + 1.0, 0.2 + 0.4 + 0.1 + 2.0])


def test_maxsim_rewards_the_passage_that_matches_every_question_token():
    question = unit([1, 0, 0], [0, 1, 0])
    # passage A (2 tokens) matches both question tokens; passage B (2 tokens) only the first, twice
    passages = unit([1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0.1, 0])
    scores = maxsim(question, passages, np.array([2, 2]))
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] < 0.6
    assert maxsim(question, passages, np.array([], dtype=int)).size == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_maxsim_in_place_equals_maxsim_of_the_gathered_rows(dtype):
    rng = np.random.default_rng(1)
    tokens = rng.standard_normal((30, 8)).astype(dtype)
    question = rng.standard_normal((3, 8)).astype(np.float32)
    starts, lengths = np.array([20, 0, 7]), np.array([10, 3, 1])
    gathered = tokens[segment_rows(starts, lengths)].astype(np.float32)
    assert np.allclose(
        maxsim_in_place(question, tokens, starts, lengths), maxsim(question, gathered, lengths), atol=1e-5
    )
    assert maxsim_in_place(question, tokens, starts[:0], lengths[:0]).size == 0


def test_rerank_adds_extra_to_the_top_and_the_smallest_extra_to_the_rest():
    out = rerank_with(np.array([1.0, 0.9, 0.1]), np.array([0, 1]), np.array([0.2, 0.5]))
    assert np.allclose(out, [1.2, 1.4, 0.3])  # the unscored third gets the smallest extra, 0.2
    assert np.allclose(rerank_with(np.array([1.0]), np.array([], dtype=int), np.array([])), [1.0])


def test_select_non_overlapping_skips_passages_that_overlap_a_kept_one_of_the_same_document():
    docs = np.array([0, 0, 1, 0])
    starts = np.array([0, 50, 0, 100])
    ends = np.array([100, 150, 100, 200])
    # 1 overlaps 0 (same document); 2 is another document; 3 only touches 0's end
    assert select_non_overlapping([0, 1, 2, 3], docs, starts, ends, limit=10) == [0, 2, 3]
    assert select_non_overlapping([1, 0, 2, 3], docs, starts, ends, limit=2) == [1, 2]


@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(1, 30)), min_size=1, max_size=25),
    st.randoms(use_true_random=False),
    st.integers(1, 30),
)
def test_select_non_overlapping_matches_its_definition(passages, random, limit):
    docs = np.array([d for d, _, _ in passages])
    starts = np.array([s for _, s, _ in passages])
    ends = starts + np.array([n for _, _, n in passages])
    order = list(range(len(passages)))
    random.shuffle(order)
    expected: list[int] = []
    for i in order:  # the definition, pair by pair
        if not any(docs[j] == docs[i] and starts[i] < ends[j] and starts[j] < ends[i] for j in expected):
            expected.append(i)
    assert select_non_overlapping(np.array(order), docs, starts, ends, limit) == expected[:limit]


def test_abstain_below_the_threshold_and_on_nan():
    assert should_abstain(0.2, 0.35) and not should_abstain(0.35, 0.35)
    assert should_abstain(float("nan"), 0.35)


def test_calibrated_threshold_sits_in_the_middle_of_the_widest_separating_gap():
    assert calibrate_threshold([0.6, 0.7, 0.8], [0.1, 0.2, 0.3]) == pytest.approx(0.45)
    assert calibrate_threshold([], []) == 0.0

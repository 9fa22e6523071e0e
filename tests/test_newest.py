"""The newest source's best passage first (embeddings/newest.py): pure functions, small inputs."""

import numpy as np

from embeddings.newest import answers_kind, asks_state, promote_newest
from embeddings.temporal import UNDATED

# four candidates, best first by score: an old passage, a newer one, the newest source's two
SCORES = np.array([3.0, 2.9, 2.4, 2.6])
DATES = np.array([2017.0, 2024.0, 2025.5, 2025.5])
ORDER = np.array([0, 1, 3, 2])


def test_the_newest_sources_best_passage_comes_first_when_relevant_enough():
    # 2.6 is 0.867 of the best: at ratio 0.85 it comes first, the others keep their order after it
    assert promote_newest(ORDER, SCORES, DATES, 0.85).tolist() == [3, 0, 1, 2]
    # at 0.9 it is not relevant enough: nothing moves
    assert promote_newest(ORDER, SCORES, DATES, 0.9).tolist() == ORDER.tolist()
    # ratio 0 turns it off
    assert promote_newest(ORDER, SCORES, DATES, 0.0).tolist() == ORDER.tolist()


def test_only_an_eligible_passage_of_the_newest_time_is_promoted():
    eligible = np.array([True, True, True, False])  # the newest source's best passage does not answer
    assert promote_newest(ORDER, SCORES, DATES, 0.75, eligible).tolist() == [2, 0, 1, 3]
    none = np.array([True, True, False, False])
    assert promote_newest(ORDER, SCORES, DATES, 0.75, none).tolist() == ORDER.tolist()  # no older one instead


def test_history_passages_and_undated_corpora_are_left_alone():
    # the newest document's best passage tells its history (dated 2010 by passage_time): the
    # latest time among the candidates is 2024, which already leads
    dates = np.array([2024.0, 2017.0, 2010.9, 2010.9])
    assert promote_newest(ORDER, SCORES, dates, 0.5).tolist() == ORDER.tolist()
    undated = np.full(4, UNDATED)
    assert promote_newest(ORDER, SCORES, undated, 0.5).tolist() == ORDER.tolist()
    assert promote_newest(np.array([], dtype=int), SCORES, DATES, 0.5).tolist() == []
    # scores that are not positive have no meaningful ratio
    assert promote_newest(ORDER, -SCORES, DATES, 0.5).tolist() == ORDER.tolist()


def test_a_state_question_but_not_a_reason_or_a_named_source():
    assert asks_state("Is the Russian embassy in Kabul still open?")
    assert not asks_state("Why does Koofi still want Russia involved?")
    assert not asks_state("Has Moscow recognised Kabul yet, according to the 2024 report?", frozenset({3}))


def test_a_role_question_needs_a_named_holder_and_a_count_question_a_number():
    texts = ["Russia's ambassador to Kabul, Alexander Mantytskiy, said so.", "The embassy remained open."]
    assert answers_kind("Who is Russia's ambassador in Afghanistan now?", texts, frozenset()).tolist() == [
        True,
        False,
    ]
    counts = ["About 2,500 militants trained there.", "Militants trained there in 2000."]
    assert answers_kind("How many militants train there today?", counts, frozenset()).tolist() == [True, False]
    assert answers_kind("Is the embassy still open?", texts, frozenset()).tolist() == [True, True]

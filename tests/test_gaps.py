"""Coverage gaps: clustering of question vectors (embeddings/clustering.py) and the report
(citebot/gaps.py), on small inputs and with the real model."""

import numpy as np

from citebot.gaps import OTHER_LANGUAGES, CoverageReport, coverage_gaps, gaps_text, is_gap
from citebot.store import QuestionRow
from embeddings.clustering import group_similar


def test_group_similar_puts_near_vectors_together_largest_group_first():
    vectors = np.array(
        [[1, 0, 0], [0, 1, 0], [0.99, 0.1, 0], [0, 0.98, 0.05], [0.97, 0, 0.1], [0, 0, 1]], dtype=np.float32
    )
    groups = group_similar(vectors, max_distance=0.3)
    assert [sorted(g) for g in groups] == [[0, 2, 4], [1, 3], [5]]
    assert groups[0][0] in (0, 2)  # the most typical member (nearest the centre) first
    assert group_similar(np.zeros((0, 3))) == [] and group_similar(np.ones((1, 3))) == [[0]]


def row(question, abstained=True, similarity=0.2, language="en"):
    return QuestionRow(0.0, question, abstained, similarity, language, "private")


def test_gaps_group_declined_and_weak_questions_by_meaning(encoder):
    rows = [
        row("What does China think of the Taliban?"),
        row("China's view of the Taliban government"),
        row("What does China think of the Taliban?"),
        row("How many tanks does the Afghan army have?"),
        row("Afghan army tank numbers"),
        row("Is Russia arming the Taliban?", abstained=False, similarity=0.8),  # answered well: no gap
        row("Who funds the Taliban?", abstained=False, similarity=0.40),  # answered weakly: a gap
        row("Почему Россия говорит с талибами?", language="ru"),
    ]
    assert not is_gap(rows[5], 0.45) and is_gap(rows[6], 0.45)
    gaps = coverage_gaps(rows, encoder.encode, similarity_below=0.45)
    china = next(g for g in gaps if "What does China think of the Taliban?" in g.examples)
    assert china.count == 3 and china.declined == 3 and len(china.examples) == 2
    tanks = next(g for g in gaps if "Afghan army tank numbers" in g.examples)
    assert tanks.count == 2 and "How many tanks does the Afghan army have?" in tanks.examples
    assert gaps[0] is china  # the largest group first
    assert all("Is Russia arming the Taliban?" not in g.examples for g in gaps)
    assert gaps[-1].note.startswith(OTHER_LANGUAGES) and "ru: 1" in gaps[-1].note
    report = gaps_text(CoverageReport(gaps, len(rows)))
    assert report.startswith("7 of 8 stored questions") and "1. 3 asked, 3 declined" in report
    assert gaps_text(CoverageReport([], 4)).startswith("No gaps")

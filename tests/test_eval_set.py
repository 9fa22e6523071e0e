"""The project's evaluation set itself: well formed, evidence that exists, questions that paraphrase."""

from collections import Counter
from pathlib import Path

import pytest

from citebot import engine
from embeddings.evaluation import KINDS, UNANSWERABLE, load_eval_set, normalize

EVAL_FILE = Path(__file__).resolve().parent / "data" / "eval.yaml"


@pytest.fixture(scope="module")
def eval_set():
    return load_eval_set(EVAL_FILE)


@pytest.fixture(scope="module")
def passages_by_doc(settings):
    """Normalised passage texts of the real index, by 3-digit document prefix."""
    data = engine.open_index(settings)
    out: dict[str, list[str]] = {}
    for i, row in enumerate(data.passages):
        out.setdefault(data.documents[row["doc"]].doc_id[:3], []).append(f" {normalize(data.passage_text(i))} ")
    return out


def test_every_evidence_string_is_inside_a_passage_of_each_named_document(eval_set, passages_by_doc):
    """Each evidence string occurs whole in some passage of one of the documents its question
    names, and each named document holds one of them: a miss is then the ranking's, never the set's."""
    problems = []
    for q in eval_set.questions:
        if not q.answerable:
            continue
        found = {
            doc: [e for e in q.evidence if any(f" {normalize(e)} " in p for p in passages_by_doc.get(doc, []))]
            for doc in q.docs
        }
        located = {e for hits in found.values() for e in hits}
        problems += [f"{q.question!r}: {e!r} is in no passage of {q.docs}" for e in q.evidence if e not in located]
        problems += [f"{q.question!r}: no evidence from {doc}" for doc, hits in found.items() if not hits]
    assert not problems, "\n".join(problems)


def test_the_set_covers_the_weak_kinds(eval_set):
    kinds = Counter(q.kind for q in eval_set.questions)
    assert set(kinds) == set(KINDS)
    assert kinds["current"] >= 15 and kinds["why"] >= 12 and kinds["unanswerable"] >= 15
    assert kinds["when"] >= 10 and kinds["how_many"] >= 10 and kinds["who"] >= 12
    assert all(not q.evidence and not q.docs for q in eval_set.questions if q.kind == UNANSWERABLE)
    assert len({q.question for q in eval_set.questions}) == len(eval_set.questions), "duplicate questions"


def test_questions_are_paraphrased_not_pasted(eval_set, passages_by_doc):
    """No question of more than five words is a stretch of a source's text."""
    text = " ".join(p for ps in passages_by_doc.values() for p in ps)
    pasted = [
        q.question
        for q in eval_set.questions
        if len(normalize(q.question).split()) > 5 and f" {normalize(q.question)} " in text
    ]
    assert not pasted

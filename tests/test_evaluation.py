"""Evaluation functions on small hand-made inputs: the file checks, per-kind scoring, declines, folds
and cross-validation with a fake pipeline."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from embeddings.evaluation import (
    Answer,
    EvalQuestion,
    EvalSet,
    EvalSetError,
    cross_validate,
    is_declined,
    load_eval_set,
    score,
    stratified_folds,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# citebot\n\nSome *markdown* prose: not an evaluation set.\n", "mapping with `questions:`"),
        ("- q: a list at the top\n  evidence: [x]\n", "mapping with `questions:`"),
        ("off_topic: [hello]\n", "mapping with `questions:`"),
        ("questions:\n- evidence: [x]\n", "question #1: needs `q:`"),
        ("questions:\n- q: ok\n  evidence: [x]\n- q: '   '\n  evidence: [x]\n", "question #2: needs `q:`"),
        ("questions:\n- q: Who?\n  evidence: 5\n", "`evidence` must be a list of non-empty strings"),
        ("questions:\n- q: Who?\n  evidence: {a: b}\n", "`evidence` must be a list of non-empty strings"),
        ("questions:\n- q: Who?\n  evidence: ['', x]\n", "`evidence` must be a list of non-empty strings"),
        ("questions:\n- q: Who?\n", "needs `evidence:`"),
        ("questions:\n- q: Who?\n  kind: unanswerable\n  evidence: [x]\n", "unanswerable question has no evidence"),
        ("questions:\n- q: Who?\n  kind: trivia\n  evidence: [x]\n", "kind 'trivia' is not one of"),
        ("questions:\n- q: Who?\n  doc: 1\n  evidence: [x]\n", "`doc` must be a string"),
        ("questions:\n- q: Who?\n  evidnce: [x]\n", "unknown field(s) evidnce"),
        ("questions:\n- just a string\n", "must be a mapping"),
        ("questions: {q: x}\n", "must be lists"),
        ("questions:\n- q: Who?\n  evidence: [x]\noff_topic: [3]\n", "off_topic #1"),
        ("questions: []\n", "holds no questions"),
        ("questions: [\n", "is not valid YAML at line 2"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused_naming_file_and_problem(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(EvalSetError) as error:
        load_eval_set(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_a_folder_or_a_missing_file_is_refused(tmp_path):
    with pytest.raises(EvalSetError, match="is a folder"):
        load_eval_set(tmp_path)
    with pytest.raises(EvalSetError, match="not found"):
        load_eval_set(tmp_path / "nothing.yaml")


def test_kinds_default_to_lookup_and_one_evidence_string_is_accepted(tmp_path):
    loaded = load_eval_set(
        write(
            tmp_path,
            "questions:\n- q: Who?\n  doc: '001,003'\n  evidence: x y\n- q: Population?\n  kind: unanswerable\n",
        )
    )
    assert loaded.questions == [
        EvalQuestion("Who?", ("001", "003"), ("x y",), "lookup"),
        EvalQuestion("Population?", (), (), "unanswerable"),
    ]


def test_any_declined_result_counts_as_declined_whatever_the_reason():
    assert is_declined(SimpleNamespace(abstained=True, hits=[]))
    assert is_declined(SimpleNamespace(abstained=False, declined_reason="not-covered", hits=["closest"]))
    assert is_declined(SimpleNamespace(abstained=False, declined_reason="off-topic"))
    assert not is_declined(SimpleNamespace(abstained=False, declined_reason=None))
    assert not is_declined(SimpleNamespace(abstained=False))


def answer(*passages: str, declined: bool = False) -> Answer:
    return Answer(declined, list(passages), 0.5, "not-covered" if declined else None)


def test_scores_per_kind_with_unanswerable_and_current_questions():
    eval_set = EvalSet(
        [
            EvalQuestion("q1", ("001",), ("the answer",), "lookup"),
            EvalQuestion("q2", ("001",), ("the reason",), "why"),
            EvalQuestion("q3", ("002",), ("recognised in 2025",), "current"),
            EvalQuestion("q4", ("002",), ("de listed",), "current"),
            EvalQuestion("u1", (), (), "unanswerable"),
            EvalQuestion("u2", (), (), "unanswerable"),
        ],
        ["off"],
    )
    answers = [
        answer("The answer!", "other"),  # lookup at rank 1
        answer("topic only", "topic", "The REASON, given"),  # why at rank 3
        answer("not yet recognised (2017)", "Recognised in 2025."),  # current at rank 2: not newest-first
        answer("the answer de-listed", declined=True),  # declined: answers nothing despite passages
        answer(declined=True),  # unanswerable, declined: right
        answer("closest passage"),  # unanswerable, answered: wrong
    ]
    metrics = score(eval_set, answers, [answer(declined=True)])
    assert metrics["counts"] == {"answerable": 4, "unanswerable": 2, "off_topic": 1}
    assert metrics["hit@1"] == 0.25 and metrics["hit@3"] == 0.75 and metrics["answered"] == 0.75
    assert metrics["mrr@5"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 4)
    assert metrics["abstained_off_topic"] == 1.0 and metrics["abstained_unanswerable"] == 0.5
    assert metrics["newest_first"] == 0.0
    by_kind = metrics["by_kind"]
    assert list(by_kind) == ["lookup", "why", "current", "unanswerable"]
    assert by_kind["why"]["hit@1"] == 0 and by_kind["why"]["hit@3"] == 1
    assert by_kind["current"] == {
        "questions": 2,
        "hit@1": 0.0,
        "hit@3": 0.5,
        "hit@5": 0.5,
        "mrr@5": 0.25,
        "answered": 0.5,
    }
    assert by_kind["unanswerable"] == {"questions": 2, "declined": 0.5, "answered": 0.5}


def small_set(per_kind: int = 6, off_topic: int = 6) -> EvalSet:
    questions = [
        EvalQuestion(f"{kind}{i}", ("001",), (f"evidence {kind} {i}",), kind)
        for kind in ("lookup", "why", "current")
        for i in range(per_kind)
    ]
    questions += [EvalQuestion(f"unanswerable{i}", (), (), "unanswerable") for i in range(per_kind)]
    return EvalSet(questions, [f"off{i}" for i in range(off_topic)])


def test_folds_partition_the_set_stratified_by_kind_and_repeat_for_a_seed():
    eval_set = small_set(per_kind=7, off_topic=5)
    folds = stratified_folds(eval_set, 3, seed=1)
    assert folds == stratified_folds(eval_set, 3, seed=1) and folds != stratified_folds(eval_set, 3, seed=2)
    assert sorted(i for q, _ in folds for i in q) == list(range(len(eval_set.questions)))
    assert sorted(i for _, o in folds for i in o) == list(range(5))
    for kind in ("lookup", "why", "current", "unanswerable"):
        sizes = [sum(eval_set.questions[i].kind == kind for i in q) for q, _ in folds]
        assert max(sizes) - min(sizes) <= 1
    sizes = [len(q) + len(o) for q, o in folds]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        stratified_folds(eval_set, 1)


def fake_pipeline(behaviour):
    """A pipeline answering each question ("why3") as ``behaviour(question)`` says: "hit" (its
    evidence at rank 1), "miss" (an unrelated passage) or "decline"."""

    def run(questions):
        out = []
        for question in questions:
            kind, number = re.fullmatch(r"([a-z_]+)(\d+)", question).groups()
            what = behaviour(question)
            out.append(
                answer(f"evidence {kind} {number}" if what == "hit" else "unrelated", declined=what == "decline")
            )
        return out

    return run


def test_cross_validation_picks_on_the_other_folds_and_reports_the_held_out_one():
    eval_set = small_set()
    answers_all = lambda q: "hit" if not q.startswith(("unanswerable", "off")) else "miss"  # noqa: E731
    careful = lambda q: "hit" if not q.startswith(("unanswerable", "off")) else "decline"  # noqa: E731
    shy = lambda q: "decline"  # noqa: E731
    behaviours = {"answers-all": answers_all, "careful": careful, "declines-all": shy}
    cv = cross_validate(
        eval_set,
        lambda c: fake_pipeline(behaviours[c["name"]]),
        [{"name": "answers-all"}, {"name": "careful"}, {"name": "declines-all"}],
        folds=3,
    )
    assert [f.chosen for f in cv.folds] == [{"name": "careful"}] * 3
    mean = cv.mean()
    assert mean["hit@1"] == 1.0 and mean["abstained_unanswerable"] == 1.0 and mean["abstained_off_topic"] == 1.0
    assert mean["newest_first"] == 1.0 and mean["objective"] == 1.0
    report = cv.as_dict()
    assert report["k"] == 3 and len(report["folds"]) == 3 and report["folds"][0]["held_out"]["hit@1"] == 1.0


def test_a_candidate_good_only_on_the_held_out_fold_is_not_chosen_for_it():
    """No leakage: the choice for a fold is made without its questions."""
    eval_set = small_set()
    folds = stratified_folds(eval_set, 3, seed=0)
    first_fold = {eval_set.questions[i].question for i in folds[0][0]}
    lucky = lambda q: "hit" if q in first_fold else "miss"  # noqa: E731 — perfect on fold 1 only
    steady = lambda q: "hit" if q.endswith(("0", "1", "2")) else "miss"  # noqa: E731 — half right everywhere
    behaviours = {"lucky": lucky, "steady": steady}
    cv = cross_validate(
        eval_set,
        lambda c: fake_pipeline(behaviours[c["name"]]),
        [{"name": "lucky"}, {"name": "steady"}],
        folds=3,
        seed=0,
    )
    assert cv.folds[0].chosen == {"name": "steady"}
    assert 0 < cv.folds[0].held_out["hit@1"] < 1.0  # steady's figure there, not lucky's perfect one

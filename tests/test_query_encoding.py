"""One forward pass per question (embeddings/query_encoding.py): the pooling math on small arrays,
and on the real model against its own sentence embedding."""

import numpy as np
import pytest

from embeddings.lexical import strip_words
from embeddings.query_encoding import (
    TokenStates,
    dropped_word_spans,
    encode_questions,
    focus_mask,
    focus_vector,
    mean_pool,
    question_vectors,
)

TOPIC = frozenset({"russia", "taliban", "afghanistan"})
QUESTIONS = [
    "Why did Russia remove the Taliban from its list of terrorist organisations?",
    "Who is Zamir Kabulov's counterpart in Kabul, Afghanistan?",
    "Taliban Russia",
    "hi",
    "What did the 'Taliban' (the movement) sign in Moscow?",
]


def test_mean_pool_averages_only_the_kept_rows():
    vectors = np.array([[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]], dtype=np.float32)
    assert np.allclose(mean_pool(vectors, np.array([True, True, False])), [2.0, 1.0])
    assert np.allclose(mean_pool(vectors, np.array([False, False, False])), [0.0, 0.0])  # no division by zero


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_dropped_spans_are_the_words_strip_words_leaves_out(question):
    spans = dropped_word_spans(question, TOPIC)
    kept, last = [], 0
    for start, end in spans:
        kept.append(question[last:start])
        last = end
    kept.append(question[last:])
    rest = " ".join(" ".join(kept).split())
    assert rest == strip_words(question, TOPIC) or (not spans and strip_words(question, TOPIC) == question)


def test_nothing_is_dropped_when_only_topic_words_are_left():
    assert dropped_word_spans("Taliban Russia", TOPIC) == []


def test_focus_mask_drops_every_word_piece_of_a_dropped_word_and_keeps_the_special_tokens():
    # "[CLS] why russia tali ##ban ? [SEP]" over "why russia taliban?"
    offsets = np.array([[0, 0], [0, 3], [4, 10], [11, 15], [15, 18], [18, 19], [0, 0]])
    spans = dropped_word_spans("why russia taliban?", TOPIC)
    assert spans == [(4, 10), (11, 19)]
    assert focus_mask(offsets, spans).tolist() == [True, True, False, False, False, False, True]
    assert focus_mask(offsets, []).all()


def test_question_vectors_pool_everything_and_the_focus_and_drop_the_special_tokens_for_maxsim():
    vectors = np.array([[1, 0], [0, 2], [0, 0.5], [1, 1]], dtype=np.float32)  # [CLS] a b [SEP]
    keep = np.array([True, True, False, True])
    out = question_vectors(TokenStates(vectors, np.zeros((4, 2), int)), keep)
    assert np.allclose(out.pooled, np.array([2, 3.5]) / np.linalg.norm([2, 3.5]))
    assert np.allclose(out.focus, np.array([2, 3]) / np.linalg.norm([2, 3]))
    assert np.allclose(out.tokens, [[0, 1], [0, 1]])


def test_focus_vector_takes_away_the_direction_of_the_tokens_it_leaves_out():
    vectors = np.array([[1, 0], [0, 2], [0, 0.5], [1, 1]], dtype=np.float32)  # [CLS] a b [SEP]
    keep = np.array([True, True, False, True])  # b is a topic word
    # weight 0: the plain mean of the kept tokens, [CLS] and [SEP] with them
    assert np.allclose(focus_vector(vectors, keep), np.array([2, 3]) / np.linalg.norm([2, 3]))
    # weight 0.5: a alone, less half the unit mean of [CLS], b and [SEP] ((2, 1.5) / 3: (0.8, 0.6))
    expected = np.array([0, 1]) - 0.5 * np.array([0.8, 0.6])
    assert np.allclose(focus_vector(vectors, keep, 0.5), expected / np.linalg.norm(expected))
    # no topic word: [CLS] and [SEP] are still left out and taken away
    expected = np.array([0, 1]) - 0.5 * np.array([1, 0.5]) / np.linalg.norm([1, 0.5])
    assert np.allclose(focus_vector(vectors, np.ones(4, bool), 0.5), expected / np.linalg.norm(expected))
    # every word a topic word (focus_mask then keeps all) or nothing but the special tokens: no division by zero
    assert np.all(np.isfinite(focus_vector(vectors[[0, 3]], np.ones(2, bool), 0.5)))


def test_the_topic_weight_turns_the_focus_away_from_the_whole_question(encoder):
    topical = [q for q in QUESTIONS if dropped_word_spans(q, TOPIC)]
    plain = encode_questions(encoder, topical, TOPIC)
    weighted = encode_questions(encoder, topical, TOPIC, topic_weight=0.65)
    for question, a, b in zip(topical, plain, weighted, strict=True):
        assert np.array_equal(a.pooled, b.pooled) and np.array_equal(a.tokens, b.tokens)
        assert float(b.focus @ b.pooled) < float(a.focus @ a.pooled) - 0.05, question
        assert abs(float(np.linalg.norm(b.focus)) - 1) < 1e-5


def test_pooling_all_tokens_is_the_models_own_sentence_embedding(encoder):
    pooled = np.stack([v.pooled for v in encode_questions(encoder, QUESTIONS, TOPIC)])
    assert np.abs(pooled - encoder.encode(QUESTIONS)).max() < 1e-5
    # and the MaxSim token vectors are the ones the two-pass path gave
    for mine, (_, tokens) in zip(
        encode_questions(encoder, QUESTIONS, TOPIC), encoder.encode_with_tokens(QUESTIONS), strict=True
    ):
        assert mine.tokens.shape == tokens.shape and np.abs(mine.tokens - tokens).max() < 1e-5


def test_the_focus_vector_leaves_the_topic_words_out(encoder):
    vectors = encode_questions(encoder, QUESTIONS, TOPIC)
    for question, v in zip(QUESTIONS, vectors, strict=True):
        moved = float(v.focus @ v.pooled) < 1 - 1e-4
        assert moved == bool(dropped_word_spans(question, TOPIC)), question
        assert abs(float(np.linalg.norm(v.focus)) - 1) < 1e-5


def test_token_states_come_from_one_forward_pass(encoder, monkeypatch):
    calls = recorded_encodes(monkeypatch, encoder)
    encode_questions(encoder, QUESTIONS, TOPIC)
    assert calls == [QUESTIONS]  # the questions once, not their stripped texts as well


def recorded_encodes(monkeypatch, encoder) -> list[list[str]]:
    """The texts of each of the encoder's forward passes from now on (the calls still encode)."""
    calls: list[list[str]] = []
    real = encoder.forward

    def recording(texts, *args, **kwargs):
        calls.append(list(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "forward", recording)
    return calls


@pytest.mark.parametrize(("focus_pass", "texts_per_question"), [("pooled", 1), ("encoded", 2)])
def test_retrieval_focus_pass_chooses_one_or_two_forward_passes(
    settings, searcher, monkeypatch, focus_pass, texts_per_question
):
    from citebot.engine import make_searcher
    from citebot.tuning import with_overrides

    chosen = make_searcher(
        with_overrides(settings, {"retrieval.focus_pass": focus_pass}), searcher.encoder, searcher.data
    )
    calls = recorded_encodes(monkeypatch, chosen.encoder)
    result = chosen.search_many(["Why did Russia remove the Taliban from its list of terrorist organisations?"])
    assert result[0].hits
    assert [len(texts) for texts in calls] == [texts_per_question]


def test_a_text_repeated_within_one_forward_pass_is_encoded_once():
    from embeddings.search import distinct_within_batch

    texts = ["a b", "c", "a b", "c", "d"]
    encoded, rows = distinct_within_batch(texts, batch_size=8)
    assert encoded == ["a b", "c", "d"]
    assert [encoded[r] for r in rows] == texts
    # more texts than one forward pass takes: all of them, as given (the batches' padding stays)
    assert distinct_within_batch(texts, batch_size=4) == (texts, [0, 1, 2, 3, 4])


@pytest.mark.parametrize("packs", [False, True])
def test_the_focus_text_that_is_the_question_again_is_not_encoded_twice(settings, searcher, monkeypatch, packs):
    """focus_pass encoded: a question without topic words is its own focus text; it is encoded
    once, and every vector is the same as encoding each text as given: to the bit in the library's
    batches, to float rounding in packed rows (a text's row mates change its matrix products)."""
    from citebot.engine import make_searcher
    from citebot.tuning import with_overrides

    monkeypatch.setattr(searcher.encoder, "packs", packs)
    same = np.array_equal if not packs else lambda a, b: np.allclose(a, b, atol=1e-6)
    encoded = with_overrides(settings, {"retrieval.focus_pass": "encoded"})
    chosen = make_searcher(encoded, searcher.encoder, searcher.data)
    plain, topical = "Who overthrew King Zahir Shah?", "Why did Russia remove the Taliban from its list?"
    assert strip_words(plain, chosen.topic_words) == plain != strip_words(topical, chosen.topic_words)
    questions = [plain, topical]
    expected = chosen.encoder.encode_with_tokens(questions + [strip_words(q, chosen.topic_words) for q in questions])
    calls = recorded_encodes(monkeypatch, chosen.encoder)
    got = chosen._encode_texts(questions)
    assert calls == [[plain, topical, strip_words(topical, chosen.topic_words)]]
    for i, vectors in enumerate(got):
        assert same(vectors.pooled, expected[i][0].reshape(-1))
        assert same(vectors.focus, expected[2 + i][0].reshape(-1))
        assert same(vectors.tokens, expected[i][1])

"""Sentence splitting and passage offsets."""

import itertools

from embeddings.chunking import cut_long, fixed_size_chunks, make_passages, split_sentences
from embeddings.cleaning import assemble


def test_sentences_respect_abbreviations_and_offsets():
    clean = assemble(
        [
            "Harsh V. Pant is Vice President, ORF. He said the U.S.-led operation began after 9/11. "
            "“It is over.” He left."
        ]
    )
    spans = split_sentences(clean)
    texts = [clean.text[s.start : s.end] for s in spans]
    assert texts == [
        "Harsh V. Pant is Vice President, ORF.",
        "He said the U.S.-led operation began after 9/11.",
        "“It is over.”",
        "He left.",
    ]


def test_sentences_never_cross_paragraphs():
    clean = assemble(["First paragraph ends here.", "Second paragraph starts. And ends."])
    spans = split_sentences(clean)
    assert [clean.text[s.start : s.end] for s in spans] == [
        "First paragraph ends here.",
        "Second paragraph starts.",
        "And ends.",
    ]


def test_passages_are_whole_sentences_within_limits():
    sentences = [f"Sentence number {i} says something of moderate length about the topic." for i in range(12)]
    clean = assemble([" ".join(sentences[:6]), " ".join(sentences[6:])])
    spans = split_sentences(clean)
    passages = make_passages(clean, spans, target_chars=150, max_chars=250)
    assert passages, "no passages"
    starts = {s.start for s in spans}
    ends = {s.end for s in spans}
    for p in passages:
        assert p.start in starts and p.end in ends
        assert p.end - p.start <= 250
        assert "\n" not in clean.text[p.start : p.end]  # a normal paragraph is not crossed
    # every sentence is covered, and consecutive passages overlap (one starts at each sentence)
    covered = {i for p in passages for i in range(p.first, p.last + 1)}
    assert covered == set(range(len(spans)))
    assert any(a.last >= b.first for a, b in itertools.pairwise(passages))


def test_a_very_short_paragraph_borrows_the_next_one():
    clean = assemble(["They are:", "Non-distinction between good and bad terrorists. Another point follows here."])
    spans = split_sentences(clean)
    passages = make_passages(clean, spans, target_chars=200, max_chars=400)
    assert clean.text[passages[0].start : passages[0].end].startswith("They are:\n\nNon-distinction")


def test_run_on_text_is_cut_at_spaces():
    text = "word " * 300
    pieces = cut_long(text.strip(), 100)
    assert all(b - a <= 100 for a, b in pieces)
    assert " ".join(text.strip()[a:b] for a, b in pieces) == text.strip()


def test_an_over_long_quotation_is_cut_at_an_inner_sentence_end():
    # pysbd keeps a quotation of several sentences as one "sentence": cut it where one of them ends,
    # not mid-sentence at the last space that fits; an abbreviation ("U.S. forces") is no end
    first = "He said: “The U.S. forces left Kabul in a hurry and the region remains unstable."
    second = "Stabilising it remains a precarious task for all its neighbours, Russia among them.”"
    text = f"{first} {second}"
    pieces = [text[a:b] for a, b in cut_long(text, 120)]
    assert pieces == [first, second]
    # without an inner sentence end, a semicolon or comma comes before any space
    clause = "the talks went on for a long time; " + "nobody knew where they would lead or why " * 2
    first_cut = cut_long(clause.strip(), 60)[0]
    assert clause[first_cut[0] : first_cut[1]] == "the talks went on for a long time;"


def test_fixed_size_chunks_cover_the_text_with_overlap():
    chunks = fixed_size_chunks("x" * 2500, 1000, 200)
    assert chunks[0] == (0, 1000) and chunks[1] == (800, 1800) and chunks[-1][1] == 2500

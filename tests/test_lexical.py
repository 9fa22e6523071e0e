"""The lexical side of retrieval (embeddings/lexical.py) on a handful of strings."""

import numpy as np

from embeddings.lexical import (
    STOPWORDS,
    LexicalIndex,
    Vocabulary,
    WordList,
    closest_word,
    english_words,
    plain_reading,
    strip_words,
    tokenize,
    with_plain_wording,
    word_set,
    words,
)

TOPIC = frozenset({"russia", "taliban"})


def test_words_are_lower_case_alphanumerics_without_possessive_s():
    assert words("Russia’s envoy, Zamir Kabulov (2021)!") == ["russia", "envoy", "zamir", "kabulov", "2021"]


def test_tokenize_drops_stop_words_and_stems():
    assert tokenize("Why did the talks fail?") == ["talk", "fail"]
    assert "not" not in STOPWORDS  # "does Russia not recognise ..." keeps its negation


def test_a_reworded_text_is_read_in_plain_english_whole_phrases_in_any_case():
    wording = (("safety pursuits", "security interests"), ("notion", "perception"), ("IS-Ok", "IS-K"))
    text = "Its Safety pursuits, the notion of threat, emotional IS-Ok; IS-Okay."
    assert plain_reading(text, wording) == "Its security interests, the perception of threat, emotional IS-K; IS-Okay."
    # the keyword index keeps the document's own words and adds the plain English of what it holds
    assert with_plain_wording(text, wording) == f"{text}\nsecurity interests perception IS-K"
    assert with_plain_wording("A promotion.", wording) == "A promotion." == plain_reading("A promotion.", wording)
    assert plain_reading("a b", (("a", r"x\1"),)) == r"x\1 b"  # the plain English is text, not a pattern


def test_bm25_ranks_the_text_with_the_rare_query_word_first():
    index = LexicalIndex(["Moscow hosted talks.", "The embassy in Kabul stayed open.", ""])
    scores = index.scores("Which embassy stayed open?")
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    assert not index.scores("zzz unknown words").any()


def test_spelling_correction_fixes_corpus_terms_and_leaves_english_words_alone():
    passages = ["The Taliban met Russian envoys in Moscow."] * 10 + ["Kabulov spoke about the Taliban."] * 5
    vocabulary = Vocabulary.build(passages, known_words=["overthrew", "meet", "them"])
    assert vocabulary.correct("did the talibn meet kabulv?") == "did the taliban meet kabulov?"
    # a capitalised word may be a name the corpus lacks: corrected only one edit (or two letters
    # swapped) from a corpus word of its first letter, and five letters or more
    assert vocabulary.correct("Did the Talibn meet Kabulv?") == "Did the Taliban meet Kabulov?"
    assert vocabulary.correct("Did the Tlaiban meet Mocsow?") == "Did the Taliban meet Moscow?"
    assert vocabulary.correct("did Kabolv meet them") == "did Kabolv meet them"  # two edits: a name
    assert vocabulary.correct("did kabolv meet them") == "did kabulov meet them"  # ... a typo
    assert vocabulary.correct("Did Yaliban meet them?") == "Did Yaliban meet them?"
    with_pan = Vocabulary.build([*passages, "A pan of rice."], known_words=["meet"])
    assert with_pan.correct("the Panj river") == "the Panj river"  # not "Pan river": four letters
    # a word neither in the corpus nor known as English is taken for a typo of a corpus word
    assert Vocabulary.build(passages).correct("meet") == "met"
    assert vocabulary.correct("Who overthrew them") == "Who overthrew them"  # a known English word
    assert vocabulary.correct("envoy") == "envoy"  # an inflection of a corpus word ("envoys")


def test_a_word_list_tells_membership_iterates_and_takes_more_words():
    listed = WordList(["meet", "envoy", "overthrew"])
    assert "meet" in listed and "envoys" not in listed and 3 not in listed
    assert list(listed) == ["envoy", "meet", "overthrew"] and len(listed) == 3
    more = listed | ["kabulov", "meet", "zahir"]  # "meet" is listed already: not added twice
    assert "kabulov" in more and "zahir" in more and "kabulov" not in listed
    assert list(more) == ["envoy", "meet", "overthrew", "kabulov", "zahir"] and len(more) == 5
    assert word_set(listed) is listed and word_set(["a", "b"]) == frozenset({"a", "b"})
    # the spelling correction takes it as its known words: a listed word is never corrected
    passages = ["Kabulov spoke about the Taliban."] * 10
    assert Vocabulary.build(passages, known_words=listed).correct("kabulv spoke") == "kabulov spoke"
    assert Vocabulary.build(passages, known_words=listed | ["kabulv"]).correct("kabulv spoke") == "kabulv spoke"


def test_the_english_words_are_a_word_list_of_the_spell_checkers_common_words():
    english = english_words()
    assert isinstance(english, WordList) and len(english) > 100_000
    assert "overthrew" in english and "happen" in english and "talibn" not in english
    assert all(word.isalpha() for word in list(english)[:1000])


def test_closest_word_allows_one_edit_for_short_words_and_two_for_longer_ones():
    counts = {"kabul": 5, "kabulov": 3, "moscow": 9}
    assert closest_word("kabl", counts) == "kabul"
    assert closest_word("moscwo", counts) == "moscow"
    assert closest_word("paris", counts) is None


def test_topic_words_are_the_non_stop_words_of_most_passages():
    vocabulary = Vocabulary.build(["Russia and the Taliban", "the Taliban in Kabul", "Taliban envoys"])
    assert vocabulary.topic_words(share=0.5) == frozenset({"taliban"})


def test_strip_words_leaves_out_topic_words_but_never_everything():
    assert strip_words("Is Russia arming the Taliban?", TOPIC) == "Is arming the"
    assert strip_words("Russia Taliban", TOPIC) == "Russia Taliban"  # nothing would be left
    assert strip_words("Russia's  envoy", TOPIC) == "Russia's envoy"  # "russias" is not a topic word

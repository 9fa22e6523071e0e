"""Declining what the corpus does not say: pure functions on small inputs, then the real
searcher, and the off-topic calibration of indexes with documents added and removed."""

import json
import shutil

import numpy as np
import pytest

from citebot import engine
from embeddings import coverage
from embeddings.lexical import Vocabulary, common_english_words, english_words

CORPUS = [
    "Russia recognised the Islamic Emirate in 2025.",
    "The Crocus City Hall attack was carried out by IS-K.",
    "Some older Afghans still speak Russian.",
    "Ambassador Dmitry Zhirnov met the Taliban.",
    "MP Fawzia Koofi spoke about Daesh.",
    "Russia Taliban Afghanistan relations.",
]


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.build(CORPUS, english_words())


def test_usable_words():
    assert coverage.usable_words("😀<b>&" * 3000) == []
    assert coverage.usable_words("?! … 🙂") == []
    assert coverage.usable_words("Who is he?") == []
    assert coverage.usable_words("ok") == ["ok"]
    assert coverage.usable_words("2021") == ["2021"]


def test_corpus_acronyms_are_the_initials_of_its_names():
    acronyms = coverage.corpus_acronyms(["fighters of the Islamic State of Iraq and Levant, and the CSTO"])
    assert {"isil", "sil", "isi"} <= acronyms  # "of" and "and" join a name, they give no letter
    assert "is" not in acronyms  # two letters are too common a word to be an acronym
    assert coverage.corpus_acronyms(["The Collective Security Treaty Organisation met."]) >= {"csto"}
    assert "tcsto" not in coverage.corpus_acronyms(["The Collective Security Treaty Organisation met."])
    # a document in capitals gives runs of at most eight initials, not every sub-run of its words
    shouting = coverage.corpus_acronyms(["ALL CAPS " * 2000])
    assert max(map(len, shouting)) == 8 and len(shouting) <= 8 * 6


def test_a_word_the_corpus_hyphenates_is_written_as_the_corpus_does():
    hyphenated = coverage.hyphenated_words(["its de-listing in April 2025, a road-map, al-Qaeda"])
    assert hyphenated == {"delist": "de-listing", "roadmap": "road-map", "alqaeda": "al-qaeda"}
    rewrite = coverage.hyphenate_like_corpus
    # in the question's own inflection and case
    assert rewrite("When was the Taliban delisted?", hyphenated, set()) == "When was the Taliban de-listed?"
    assert rewrite("Alqaeda roadmaps", hyphenated, set()) == "Al-qaeda road-maps"
    # a word the corpus itself uses stays, and so does one that only shares the stem's letters
    assert rewrite("roadmap", hyphenated, {"roadmap"}) == "roadmap"
    assert rewrite("the talks", hyphenated, set()) == "the talks"


def test_a_counted_things_qualifier_counts_only_when_it_is_a_name():
    # "How many Afghan refugees": refugees is what is counted; "how many principles underpin": a verb
    assert {"afghan", "refugees"} <= coverage.focus_words("How many Afghan refugees live in Russia?")
    assert "underpin" not in coverage.focus_words("how many principles underpin the policy?")
    assert "principles" in coverage.focus_words("how many principles underpin the policy?")


def test_missing_terms_skip_corpus_words_inflections_spellings_and_common_words(vocabulary):
    common = common_english_words()
    missing = coverage.missing_terms("What is the population of Afghanistan?", vocabulary, common)
    assert missing == ["population"]
    assert coverage.missing_terms("Did Russia recognize the emirate?", vocabulary, common) == []  # -ize/-ise
    assert coverage.missing_terms("What did Fawzia Kofi say?", vocabulary, common) == []  # one letter off
    assert coverage.missing_terms("When did Zhirnof meet them?", vocabulary, common) == []
    assert coverage.missing_terms("Panj river", vocabulary, common) == ["panj", "river"]  # not "pan"
    assert coverage.missing_terms("Does Russia use its currently?", vocabulary, common) == []
    assert coverage.missing_terms("Who wrote it, Hussain?", vocabulary, common, also_known=frozenset({"hussain"})) == []


@pytest.mark.parametrize(
    ("question", "missing", "expected"),
    [
        ("What is the population of Afghanistan?", ["population"], ["population"]),
        ("What currency do the Taliban use?", ["currency"], ["currency"]),
        ("How many mosques are there in Kabul?", ["mosques"], ["mosques"]),
        ("Did Putin ever meet the Taliban leader Akhundzada?", ["akhundzada"], ["akhundzada"]),
        (
            "Are there direct passenger flights between Moscow and Kabul?",
            ["passenger", "flights"],
            ["passenger", "flights"],
        ),
        # a missing verb or a type word beside specific corpus words: still answered
        ("When did the Taliban overrun Kunduz?", ["overrun"], []),
        ("Beyond which river was the Soviet military pushed back?", ["river"], []),
        ("did the heroin trade push moscow into talking with the taliban", ["heroin"], []),
        # "the main thrust of" asks what a source says, not for a thing named "thrust"
        ("What was the main thrust of Russia's return to Afghanistan until 2013?", ["thrust"], []),
        ("What is the gist of Moscow's Afghan policy?", ["gist"], []),
    ],
)
def test_focus_missing(question, missing, expected):
    topic = frozenset({"russia", "taliban", "afghanistan"})
    assert coverage.focus_missing(question, missing, topic, common_english_words()) == expected


def test_a_year_no_source_names_is_missing_unless_it_bounds_a_period_or_is_after_the_newest(vocabulary):
    assert coverage.absent_years("Who came to the 2018 Moscow Format?", vocabulary, 2025) == ["2018"]
    assert coverage.absent_years("What happened in 2019 and in 2019?", vocabulary, 2025) == ["2019"]
    assert coverage.absent_years("What did Russia do in 2025?", vocabulary, 2025) == []  # a source names it
    # a period's bound: the sources may speak of the years inside it
    assert coverage.absent_years("What has Russia done since 2018?", vocabulary, 2025) == []
    assert coverage.absent_years("talks between 2015 and 2019", vocabulary, 2025) == []
    # after the newest source: a question about the present, which the newest source answers
    assert coverage.absent_years("Where do things stand in 2026?", vocabulary, 2025) == []
    assert coverage.absent_years("Where do things stand in 2026?", vocabulary, None) == ["2026"]
    # not years: counts, decades, other numbers
    assert coverage.absent_years("Were 2500 fighters trained in the 2010s or 999 times?", vocabulary, 2025) == []


def test_name_phrases_are_runs_of_capitalised_words_inside_the_question():
    assert coverage.name_phrases("When did Mullah Omar die?") == [("mullah", "omar")]
    # a possessive and punctuation end a name; one word is no phrase
    assert coverage.name_phrases("Who heads Russia's Supreme Court?") == [("supreme", "court")]
    assert coverage.name_phrases("Did the Islamic State hit Crocus City Hall, Moscow?") == [
        ("islamic", "state"),
        ("crocus", "city", "hall"),
    ]
    assert coverage.name_phrases("Did Kabulov meet the CSTO chief?") == []  # an acronym is no name word
    # capitals that name nothing: the first word, Title Case, shouting
    assert coverage.name_phrases("Mullah Omar's death") == []
    assert coverage.name_phrases("Who Is Zamir Kabulov?") == []
    assert coverage.name_phrases("WHO IS ZAMIR KABULOV") == []


def test_a_name_no_source_writes_is_absent_though_each_of_its_words_is_there(vocabulary):
    def texts_with(name):
        return [t for t in CORPUS if all(w in t.lower() for w in name)]

    # "Dmitry" and "Koofi" are corpus words, never one name
    assert coverage.absent_names("Did Dmitry Koofi speak?", vocabulary, texts_with) == ["Dmitry Koofi"]
    assert coverage.absent_names("Did Ambassador Zhirnov meet them?", vocabulary, texts_with) == []
    # a source may put words inside a name: "Ambassador Dmitry Zhirnov" writes "Ambassador Zhirnov"
    assert coverage.absent_names("What did Ambassador Zhirnov say?", vocabulary, texts_with) == []
    assert coverage.absent_names("Who attacked Crocus City Hall?", vocabulary, texts_with) == []
    # a longer name is written when its last two words are ("UN Security Council")
    assert coverage.absent_names("Did the Taliban Islamic Emirate win?", vocabulary, texts_with) == []
    # "-ize" is "-ise": the corpus's own spelling of the name
    sco = ["The Shanghai Cooperation Organisation met.", "A terrorist organization spoke."]

    def sco_with(name):
        return [t for t in sco if all(w in t.lower() for w in name)]

    assert (
        coverage.absent_names("Did the Shanghai Cooperation Organization meet?", Vocabulary.build(sco), sco_with) == []
    )
    # a word the corpus lacks is missing_terms' business, not a name's
    assert coverage.absent_names("Did Sergei Lavrov speak?", vocabulary, texts_with) == []
    # each word a name of its own in the corpus: a list of names, as a terse question writes them
    single = coverage.one_word_names([*CORPUS, "Koofi spoke, and then Dmitry left."])
    assert {"koofi", "dmitry", "russia"} <= single and "zhirnov" not in single and "hall" not in single
    assert coverage.absent_names("did Dmitry Koofi speak", vocabulary, texts_with, single) == []
    assert coverage.absent_names("did Dmitry Koofi speak", vocabulary, texts_with, {"koofi"}) == []
    # ... and what stands between such names is a name, when two words or more
    assert coverage.absent_names("did Russia Dmitry Koofi speak", vocabulary, texts_with, {"russia"}) == [
        "Dmitry Koofi"
    ]


def test_acronym_names_are_the_runs_whose_initials_they_are_a_definition_first():
    texts = [
        "Russia recognised the IEA. The CSTO met. The ISI helped. The QRS spoke.",
        "Talks on the Islamic Emirate of Afghanistan went on; the Collective Security Treaty Organisation too.",
        "the Inter-Services Intelligence Directorate (ISI) and the Islamic State of Iraq twice:",
        "the Islamic State of Iraq, Islamic State of Iraq; Quick Red Sun and Quiet Rain Song",
    ]
    names = coverage.acronym_names(texts)
    assert (
        names["IEA"] == "Islamic Emirate of Afghanistan" and names["CSTO"] == "Collective Security Treaty Organisation"
    )
    # a hyphen parts initials; a name written with the acronym in brackets beats any count
    assert names["ISI"] == "Inter-Services Intelligence"
    assert "QRS" not in names  # two names tie: no telling which
    assert "ISOI" not in names  # never written as an acronym: nothing to expand


def test_a_question_is_searched_with_the_acronym_beside_its_name_and_back():
    names = {
        "IEA": "Islamic Emirate of Afghanistan",
        "ISKP": "Islamic State Khorasan Province",
        "SCO": "Shanghai Cooperation Organisation",
    }
    expand = coverage.expand_acronyms
    assert (
        expand("Has Russia recognised the Islamic Emirate?", names)
        == "Has Russia recognised the Islamic Emirate (IEA)?"
    )
    assert (
        expand("Has Russia recognised the iea?", names)
        == "Has Russia recognised the iea (Islamic Emirate of Afghanistan)?"
    )
    assert expand("the IEA, the Islamic Emirate of Afghanistan", names) == "the IEA, the Islamic Emirate of Afghanistan"
    # a name shortens before its "of", not before another word: "Islamic State" is more than ISKP
    assert expand("Does the Islamic State threaten Russia?", names) == "Does the Islamic State threaten Russia?"
    # each found in the question as asked: an inserted name is not expanded again
    assert (
        expand("ISKP and the sco", names)
        == "ISKP (Islamic State Khorasan Province) and the sco (Shanghai Cooperation Organisation)"
    )
    assert expand("the sco", names, english=frozenset({"sco"})) == "the sco"  # an English word in lower case


def test_threshold_from_probes_and_rare_phrases():
    probes = np.array([0.1, 0.2, 0.25, 0.3, 0.5])
    assert coverage.threshold_from_probes(probes, 0.0, 0.0) == pytest.approx(np.quantile(probes, 0.95))
    assert coverage.threshold_from_probes(probes, 0.02, 0.9) == 0.9
    assert coverage.threshold_from_probes(np.array([]), 0.0, 0.3) == 0.3
    postings = coverage.rare_word_sentences(CORPUS, {"crocus": 0.01, "hall": 0.01, "older": 0.01}, frozenset())
    assert coverage.shares_rare_phrase("Who attacked Crocus City Hall?", postings)
    assert not coverage.shares_rare_phrase("crocus and older", postings)  # never in one sentence
    calibration = coverage.Calibration(0.31, {"q50": 0.29})
    assert coverage.Calibration.from_dict(json.loads(json.dumps(calibration.as_dict()))) == calibration
    assert calibration.lenient_threshold == 0.29
    assert coverage.Calibration.from_dict({"version": 0}) is None and coverage.Calibration.from_dict(None) is None


# ----------------------------------------------------------------------------- the real searcher


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("What is the population of Afghanistan?", "population"),
        ("Did Putin ever meet the Taliban leader Akhundzada?", "akhundzada"),
        ("What currency do the Taliban use?", "currency"),
        # the sources speak of the attack, but its best passage gives no count
        ("How many people died in the Crocus City Hall attack?", "how many people died"),
        # every word is in the corpus, but no passage found names anyone in the role
        ("Who is the Taliban government's foreign minister?", "foreign minister"),
        ("What is the name of the Taliban's charge d'affaires in Moscow?", "charge d'affaires"),
        # no source names that year, though the meetings are theirs
        ("How many Taliban delegates came to the 2018 Moscow Format meeting?", "2018"),
        # "Mullah" (Abdulsalam) and "Omar" (Nessar) are in the sources, never one name
        ("When did Mullah Omar die?", "Mullah Omar"),
    ],
)
def test_on_topic_questions_the_corpus_does_not_answer_name_what_is_missing(searcher, question, missing):
    result = searcher.search(question)
    assert result.abstained and result.hits == []
    assert result.declined_reason == "not_covered" and missing in result.missing_terms
    assert result.closest  # the nearest passages, offered apart from the answer
    data = result.to_json()
    assert data["declined_reason"] == "not_covered" and data["results"] == [] and data["closest"]


def test_anchored_needs_a_topic_word_a_rare_corpus_word_or_two_words_in_one_sentence(vocabulary):
    everyday = common_english_words(coverage.EVERYDAY_WORDS)
    topic = frozenset({"russia", "taliban", "afghanistan"})

    def anchored(question: str, sentences=CORPUS, everyday=everyday) -> bool:
        return coverage.anchored(coverage.usable_words(question), vocabulary, topic, everyday, sentences)

    assert anchored("Does Russia still matter?")  # a topic word
    assert anchored("Who is Zhirnov?") and anchored("What did the Afghans say?")  # rare in English
    assert anchored("Was the hall attack carried out by them?")  # "hall" and "attack" share a sentence
    assert not anchored("Was the hall attack carried out by them?", sentences=["The hall.", "An attack."])
    # everyday English words that the corpus uses only apart: nothing ties the question to it
    assert not anchored("What caused the global financial crisis older than the city?")
    assert not anchored("What is the capital of France?")
    assert anchored("What is the capital of France?", everyday=frozenset())  # no word list: never declines


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "hello",
        "hey",
        "ok",
        "thanks!",
        "How do I bake sourdough bread?",
        "What caused the 2008 global financial crisis?",  # as similar as on-topic text, but nothing in common
    ],
)
def test_off_topic_and_small_talk_are_declined_as_off_topic(searcher, question):
    result = searcher.search(question)
    assert result.abstained and result.hits == [] and result.declined_reason == "off_topic"


def test_junk_without_words_is_declined_without_passages(searcher):
    for junk in ("😀<b>&" * 3000, "?!", "🙂🙂", "<<>>"):
        result = searcher.search(junk)
        assert result.abstained and result.hits == [] and result.declined_reason == "no_words"


@pytest.mark.parametrize(
    ("question", "evidence"),
    [
        ("Who attacked Crocus City Hall?", "crocus city hall in moscow in march 2024"),
        # the sources write "de-listing": the joined word is theirs too, in BM25 and in coverage
        ("When was the Taliban delisted in Russia?", "de listing in april 2025"),
        ("When did the Taliban overrun Kunduz?", None),
        ("did the heroin trade push moscow into talking with the taliban", None),
        ("how many soviet soldiers died in the afghan war", "14 500 soviet soldiers"),
        # two names side by side, each written alone in the sources: a terse list, not one name
        ("what do Putin Kabulov think", None),
        # a source named by its author or publisher: the corpus itself, however few words it shares
        ("What did Asma Hussain write?", None),
        ("What is the EurAsian Times?", None),
    ],
)
def test_no_false_abstention_on_questions_the_corpus_answers(searcher, question, evidence):
    from embeddings.evaluation import hit_rank

    result = searcher.search(question, k=3)
    assert not result.abstained and result.declined_reason is None and result.hits
    if evidence:
        assert hit_rank([h.text for h in result.hits], [evidence]) is not None


SMALL_TALK = ["hello", "hey", "ok", "hiya", "good afternoon", "thanks a lot"]  # not all among the probes
REAL = [
    "Who attacked Crocus City Hall?",
    "Who overthrew King Zahir Shah?",
    "Do Afghans still speak Russian?",
    "Why did Russia start talking to the Taliban?",
]

NEWSLETTER = """Hello, readers!

Welcome back. OK, here is this week's note.

Russian wheat and fuel exports to Afghanistan grew in 2024, traders in Termez said. Kabul pays partly in
barter, and the trucks cross at the Hairatan bridge.

Thanks for reading. See you next week!
"""
FAQ = """Frequently asked questions

Hi! Is this the right place? Yes.

What is the Moscow Format? It is a series of regional consultations on Afghanistan that Russia has hosted
since 2017, with China, Iran, Pakistan, India and the Central Asian states.

OK. Bye!
"""


def test_abstention_is_calibrated_per_corpus_with_documents_added_and_removed(
    tmp_path, seeds_copy, built_index_dir, make_settings, encoder, searcher
):
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)  # incremental: only the changes embed
    seen = {}

    def check(label: str) -> None:
        settings = make_settings(index_dir=index_dir, corpus_seeds_dir=seeds_copy)
        report = engine.update_index(settings, encoder)
        assert report.built
        manifest = json.loads((index_dir / "current" / "manifest.json").read_text())
        seen[label] = manifest["calibration"]["threshold"]
        other = engine.make_searcher(settings, encoder, engine.open_index(settings))
        assert other.calibration.threshold == pytest.approx(seen[label], abs=1e-4)  # read from the manifest
        for question, result in zip(SMALL_TALK, other.search_many(SMALL_TALK), strict=True):
            assert result.abstained and not result.hits, (label, question, result.best_similarity)
        for question, result in zip(REAL, other.search_many(REAL), strict=True):
            assert not result.abstained and result.hits, (
                label,
                question,
                result.declined_reason,
                result.best_similarity,
                other.calibration,
            )

    (seeds_copy / "005_newsletter.txt").write_text(NEWSLETTER, encoding="utf-8")
    (seeds_copy / "006_faq.md").write_text(FAQ, encoding="utf-8")
    check("added")
    for name in ("005_newsletter.txt", "006_faq.md", "004_52eea514bd0a09a1.txt"):
        (seeds_copy / name).unlink()
    check("removed")
    assert seen["added"] != seen["removed"]  # measured again for each corpus, not a fixed number


@pytest.mark.parametrize(
    "question",
    [
        "Who is Russia's ambassador in Afghanistan now?",
        "Who is the governor of Jowzjan quoted on IS and Taliban numbers?",
    ],
)
def test_a_question_for_a_role_holder_the_sources_name_is_answered(searcher, question):
    result = searcher.search(question)
    assert not result.abstained and result.hits

"""Whether the corpus can answer a question at all, and if not, why not.

Three ways to decline, each a ``declined_reason`` of :class:`embeddings.search.SearchResult`:

* ``no_words``: the input holds no usable word ("😀<b>&" × 3000, "?!");
* ``off_topic``: nothing in the corpus is as similar to the question as the corpus's own
  similarity to small talk and random text (the threshold is measured for each corpus when its
  index is built, :func:`calibrate`, so it follows documents being added or removed);
  Besides, a question that shares nothing distinctive with the corpus is off topic however
  similar it looks (:func:`anchored`: "What caused the 2008 global financial crisis?" against
  a corpus that speaks of "financial assistance" and "economic crisis");
* ``not_covered``: the question is on topic but its focus is a word the corpus never uses, nor
  any inflection or near spelling of it ("What is the population of Afghanistan?" → the sources
  don't mention "population").
"""

from __future__ import annotations

import random
import re
import weakref
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Protocol

import numpy as np

from .lexical import STOPWORDS, Vocabulary, closest_word, words
from .temporal import is_current_question

CALIBRATION_VERSION = 1

# Generic text no corpus of documents answers: greetings, chat, requests to the bot, everyday
# questions. The corpus's best similarity to these, measured at build time, is what "not similar
# enough to answer" means for that corpus.
SMALL_TALK = (
    "hello",
    "hi",
    "hi there",
    "hello there",
    "good morning",
    "good evening",
    "good night",
    "yo",
    "thanks",
    "thank you",
    "thank you very much",
    "thx",
    "cheers",
    "bye",
    "goodbye",
    "see you",
    "yes",
    "no",
    "nope",
    "yep",
    "sure",
    "okay",
    "fine",
    "great",
    "cool",
    "nice",
    "wow",
    "lol",
    "haha",
    "hmm",
    "what?",
    "why?",
    "how?",
    "test",
    "testing",
    "ping",
    "start",
    "help",
    "menu",
    "anyone here?",
    "how are you?",
    "how are you doing",
    "what's up",
    "sup",
    "who are you?",
    "what can you do?",
    "are you a bot?",
    "are you there?",
    "can you help me?",
    "tell me something",
    "tell me a joke",
    "I don't understand",
    "never mind",
    "good bot",
    "bad bot",
    "you are useless",
    "I love you",
    "what is your name?",
    "what time is it?",
    "what day is it today?",
    "nice to meet you",
    "what is the weather like?",
    "is it going to rain tomorrow?",
    "recommend a good movie",
    "what should I cook for dinner?",
    "how do I lose weight?",
    "how much is a cup of coffee?",
    "what is the meaning of life?",
    "play some music",
    "set an alarm for 7 am",
    "how do I install python?",
    "my computer is slow",
    "what is 2 plus 2?",
    "where can I buy shoes?",
)
# A word among the English words this frequent ("global", "financial", "crisis") does not by
# itself tie a question to a corpus; a rarer one ("afghan", "referendum", a name) does.
EVERYDAY_WORDS = 10_000
RANDOM_WORDS = 40  # texts of random English words added to the probes (fixed seed)


class Encoder(Protocol):
    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Calibration:
    """What abstention needs to know about one corpus, stored in the build manifest."""

    threshold: float  # below this best similarity a question is off topic
    probe_quantiles: dict[str, float]  # the probes' best similarities ("q50", "q90", "q95", "q100")

    @property
    def lenient_threshold(self) -> float:
        """For a question that shares a rare phrase with the corpus: only below what half the
        probes reach is it off topic."""
        return min(self.threshold, self.probe_quantiles.get("q50", self.threshold))

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CALIBRATION_VERSION,
            "threshold": round(self.threshold, 4),
            "probe_quantiles": {k: round(v, 4) for k, v in self.probe_quantiles.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration | None:
        if not isinstance(data, dict) or data.get("version") != CALIBRATION_VERSION:
            return None
        try:
            return cls(float(data["threshold"]), {str(k): float(v) for k, v in data["probe_quantiles"].items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def probe_texts(vocabulary: Sequence[str], n_random: int = RANDOM_WORDS, seed: int = 0) -> list[str]:
    """Small talk plus ``n_random`` strings of 1–6 random words from ``vocabulary`` (English
    words, in sorted order so the draw is the same every build)."""
    rng = random.Random(seed)
    pool = sorted(vocabulary)
    randoms = [" ".join(rng.choice(pool) for _ in range(rng.randint(1, 6))) for _ in range(n_random)] if pool else []
    return list(SMALL_TALK) + randoms


_PROBE_VECTORS: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], np.ndarray]] = weakref.WeakKeyDictionary()


def encode_probes(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """The probes' vectors, encoded once per encoder: a rebuild or a new searcher after a change
    of the seeds costs no extra model call."""
    try:
        cache = _PROBE_VECTORS.setdefault(encoder, {})
    except TypeError:  # an encoder that cannot be weakly referenced: no cache
        cache = {}
    key = tuple(texts)
    if key not in cache:
        cache[key] = np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    return cache[key]


def best_similarities(queries: np.ndarray, passage_vectors: np.ndarray, sentence_vectors: np.ndarray) -> np.ndarray:
    """For each query vector, the best cosine with any passage or sentence (what the searcher
    compares with the threshold)."""
    best = np.full(len(queries), -1.0, dtype=np.float64)
    for vectors in (passage_vectors, sentence_vectors):
        if len(vectors):
            best = np.maximum(best, (np.asarray(vectors, dtype=np.float32) @ queries.T).max(axis=0))
    return best


def threshold_from_probes(probe_best: np.ndarray, margin: float, floor: float) -> float:
    """The off-topic threshold: just above the best similarity small talk and random text reach
    in this corpus (the 95th percentile plus ``margin``), never below ``floor``."""
    if not len(probe_best):
        return floor
    return max(floor, float(np.quantile(probe_best, 0.95)) + margin)


def calibrate(
    encoder: Encoder,
    passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    english: Iterable[str] | None = None,
    *,
    margin: float = 0.0,
    floor: float = 0.0,
) -> Calibration:
    """Measure how similar this corpus is to text it cannot answer (build time, about a second).

    ``english``: the words random probes are drawn from (default: :func:`lexical.english_words`)."""
    from .lexical import english_words

    probes = probe_texts(list(english if english is not None else english_words()))
    vectors = encode_probes(encoder, probes)
    probe_best = best_similarities(vectors, passage_vectors, sentence_vectors)
    quantiles = {f"q{int(q * 100)}": float(np.quantile(probe_best, q)) for q in (0.5, 0.9, 0.95, 1.0)}
    return Calibration(threshold_from_probes(probe_best, margin, floor), quantiles)


def rare_word_sentences(
    sentences: Iterable[str], document_frequency: dict[str, float], skip: frozenset[str], max_share: float = 0.02
) -> dict[str, frozenset[int]]:
    """For each rare corpus word (in at most ``max_share`` of passages, not in ``skip``), the
    sentences that hold it."""
    postings: dict[str, set[int]] = {}
    for i, sentence in enumerate(sentences):
        for word in set(words(sentence)):
            if document_frequency.get(word, 1.0) <= max_share and word not in skip and word not in STOPWORDS:
                postings.setdefault(word, set()).add(i)
    return {w: frozenset(ids) for w, ids in postings.items()}


def shares_rare_phrase(question: str, postings: dict[str, frozenset[int]]) -> bool:
    """Whether two rare corpus words of the question stand in one sentence of the corpus
    ("Crocus" and "Hall"): the question names something the corpus speaks of, however little
    its embedding resembles the passage's."""
    rare = [postings[w] for w in dict.fromkeys(usable_words(question)) if w in postings]
    return any(a & b for i, a in enumerate(rare) for b in rare[i + 1 :])


def anchored(
    question_words: Sequence[str],
    vocabulary: Vocabulary,
    topic_words: frozenset[str],
    everyday_words: frozenset[str],
    sentences: Iterable[str],
) -> bool:
    """Whether a question shares something distinctive with the corpus: a topic word of the
    corpus (by stem: "afghanistan"), a corpus word that is rare in English (not among
    ``everyday_words``: names, places, "afghan", "kabulov", "2025"), or two of its words standing
    together in one of ``sentences`` (the sentences of the passages retrieved for it).

    All three come from the corpus itself, so the test follows documents being added or removed.
    With no ``everyday_words`` every corpus word is distinctive (the test never declines)."""
    from .lexical import _stemmer

    if not everyday_words:
        return True
    stem = _stemmer().stemWord
    present = [w for w in dict.fromkeys(question_words) if w in vocabulary.counts or stem(w) in vocabulary.stems]
    topic_stems = {stem(w) for w in topic_words}
    if any(w not in everyday_words or stem(w) in topic_stems for w in present):
        return True
    wanted = {stem(w) for w in present}
    if len(wanted) < 2:
        return False
    return any(len(wanted & {stem(w) for w in words(sentence)}) >= 2 for sentence in sentences)


# ------------------------------------------------------------------------------------ words


# a run of capitalised words, which "of", "and", "the", "for" may join: "Islamic State of Iraq and Levant"
_CAPITALISED_RUN = re.compile(r"[A-Z][\w’'-]*(?:\s+(?:(?:of|and|the|for)\s+)*[A-Z][\w’'-]*)+")
_RUN_JOINERS = frozenset({"of", "and", "the", "for"})


def corpus_acronyms(texts: Iterable[str], min_letters: int = 3, max_letters: int = 8) -> frozenset[str]:
    """The initials of the corpus's capitalised names, of every run of ``min_letters`` to
    ``max_letters`` of their words ("isil" of "Islamic State of Iraq and Levant", "csto" of
    "Collective Security Treaty Organisation"): a question may name what the sources spell out.
    (The cap keeps a document in capitals from giving every sub-run of thousands of words.)"""
    acronyms: set[str] = set()
    for text in texts:
        for run in _CAPITALISED_RUN.finditer(text):
            initials = [w[0].lower() for w in run.group(0).split() if w.lower() not in _RUN_JOINERS]
            for start in range(len(initials)):
                for end in range(start + min_letters, min(len(initials), start + max_letters) + 1):
                    acronyms.add("".join(initials[start:end]))
    return frozenset(acronyms)


_ACRONYM = re.compile(r"\b[A-Z]{3,8}\b")
DEFINED_WEIGHT = 100  # a name written with its acronym in brackets outweighs any count of other runs


def acronym_names(texts: Iterable[str]) -> dict[str, str]:
    """The names the corpus's acronyms stand for, where another place spells them out: "IEA" →
    "Islamic Emirate of Afghanistan" when one source writes "the IEA" and another the name. An
    acronym goes to a capitalised run (:func:`corpus_acronyms`' kind) whose initials it is (a
    hyphen parts initials: "Inter-Services Intelligence" for "ISI"): one the corpus defines
    with it ("... Intelligence Directorate (ISI)"), else the most frequent; none on a tie."""
    texts = list(texts)
    written = {m.group(0) for text in texts for m in _ACRONYM.finditer(text)}
    runs: dict[str, dict[str, int]] = {}
    for text in texts:
        for run in _CAPITALISED_RUN.finditer(text):
            tokens = run.group(0).split()
            kept = [i for i, w in enumerate(tokens) if w.lower() not in _RUN_JOINERS]
            letters = ["".join(part[:1] for part in tokens[i].split("-")).upper() for i in kept]
            after, before = text[run.end() : run.end() + 12], text[max(0, run.start() - 12) : run.start()]
            for a in range(len(kept)):
                for b in range(a + 2, min(len(kept), a + 8) + 1):  # two words or more
                    initials = "".join(letters[a:b])
                    if initials not in written:
                        continue
                    name = re.sub(r"['’]s$", "", " ".join(tokens[kept[a] : kept[b - 1] + 1]))
                    defined = after.startswith(f" ({initials})") or before.endswith(f"{initials} (")
                    counts = runs.setdefault(initials, {})
                    counts[name] = counts.get(name, 0) + (DEFINED_WEIGHT if defined else 1)
    names = {}
    for acronym, counts in runs.items():
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            names[acronym] = ranked[0][0]
    return names


def _name_prefixes(name: str) -> list[str]:
    """The name and its leading parts of two or more words before an "of" ("Islamic Emirate of
    Afghanistan", "Islamic Emirate"), longest first: how a question may shorten it. Not before
    another word: "Islamic State" is more than "Islamic State Khorasan Province"."""
    tokens = name.split()
    cuts = [
        i
        for i, w in enumerate(tokens)
        if i >= 2 and w.lower() in _RUN_JOINERS and tokens[i - 1].lower() not in _RUN_JOINERS
    ]
    return [name] + [" ".join(tokens[:i]) for i in reversed(cuts)]


def expand_acronyms(question: str, names: Mapping[str, str], english: Container[str] = frozenset()) -> str:
    """The question with each corpus acronym it uses followed by the name, and each name (or
    the name's leading words, when they lead no other name) by its acronym: "recognise the
    Islamic Emirate" → "recognise the Islamic Emirate (IEA)", the words a source that writes only
    "the IEA" uses. An acronym written in lower case counts unless it is an English word."""
    shortened: dict[str, list[str]] = {}
    for acronym, name in names.items():
        for prefix in _name_prefixes(name):
            shortened.setdefault(prefix.lower(), []).append(acronym)
    insertions: list[tuple[int, str]] = []  # found in the question as asked, then inserted, last first
    for acronym, name in names.items():
        flags = 0 if acronym.lower() in english else re.IGNORECASE
        said = re.search(rf"\b{acronym}\b", question, flags)
        named = next(
            (
                m
                for prefix in _name_prefixes(name)
                if shortened[prefix.lower()] == [acronym]
                and (m := re.search(rf"\b{re.escape(prefix)}\b", question, re.IGNORECASE))
            ),
            None,
        )
        if said and not named:
            insertions.append((said.end(), f" ({name})"))
        elif named and not said:
            insertions.append((named.end(), f" ({acronym})"))
    for at, text in sorted(insertions, reverse=True):
        question = question[:at] + text + question[at:]
    return question


_HYPHENATED = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)+")


def hyphenated_words(texts: Iterable[str]) -> dict[str, str]:
    """The corpus's hyphenated words by the stem of their joined spelling: {"delist": "de-listing",
    "roadmap": "road-map"}."""
    from .lexical import _stemmer

    forms = sorted({m.group(0).lower() for text in texts for m in _HYPHENATED.finditer(text)})
    return dict(zip(_stemmer().stemWords([f.replace("-", "") for f in forms]), forms, strict=True))


def hyphenate_like_corpus(query: str, hyphenated: Mapping[str, str], corpus_words: Container[str]) -> str:
    """``query`` with each word that the corpus only writes hyphenated written so, in the query's
    own inflection ("delisted" → "de-listed" for "de-listing"), so that BM25 and the model see the
    sources' spelling; a word the corpus uses as written stays."""
    from .lexical import _stemmer

    def split(match: re.Match[str]) -> str:
        word = match.group(0)
        form = None if word.lower() in corpus_words else hyphenated.get(_stemmer().stemWord(word.lower()))
        if form is None:
            return word
        cuts = list(accumulate(len(part) for part in form.split("-")[:-1]))
        if cuts[-1] >= len(word) or word[: cuts[-1]].lower() != form.replace("-", "")[: cuts[-1]]:
            return word
        return "-".join(word[a:b] for a, b in zip([0, *cuts], [*cuts, len(word)], strict=True))

    return re.sub(r"[A-Za-z]{4,}", split, query)


def usable_words(text: str) -> list[str]:
    """The words that can carry a question: letters or digits, not a stop word, longer than one
    character ("😀<b>&" has only "b")."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def _name_words(question: str) -> set[str]:
    """Lower-cased words written capitalised inside the question (not as its first word)."""
    tokens = re.findall(r"[A-Za-z][\w'’-]*", question)
    return {w for t in tokens[1:] if t[0].isupper() for w in words(t)}


def missing_terms(
    question: str,
    vocabulary: Vocabulary,
    common: frozenset[str],
    *,
    also_known: frozenset[str] = frozenset(),
    min_length: int = 3,
) -> list[str]:
    """Content words of ``question`` the corpus never uses: not as written, not inflected (same
    stem), not spelled another way, nor in ``also_known`` (the citations' words, an author's name;
    the corpus's acronyms). Very common English words ("use", "ever", "happen") never count: they
    are not what a question is about."""
    from .lexical import _stemmer

    missing = []
    for word in dict.fromkeys(usable_words(question)):
        if (
            len(word) < min_length
            or word.isdigit()
            or word in common
            or word in vocabulary.counts
            or word in also_known
            or word in ANSWER_FORM_WORDS
        ):
            continue
        if word.endswith("ly") or is_current_question(word):
            continue  # "currently", "nowadays", "formally": how the question asks, not what about
        if _stemmer().stemWord(word) in vocabulary.stems:
            continue
        if _spelling_variant(word, vocabulary):
            continue
        missing.append(word)
    return missing


# Words before a year that make it the bound of a period ("since 2019", "between 2015 and 2019"):
# a period can hold what the sources say without any of them naming that year
_PERIOD_BOUNDS = frozenset(
    {"since", "after", "before", "until", "till", "from", "by", "between", "and", "to", "through"}
)


def absent_years(question: str, vocabulary: Vocabulary, latest_year: int | None) -> list[str]:
    """Years the question asks about that no document names ("the 2018 Moscow Format meeting"
    when no source mentions 2018): a date the sources do not cover, whatever else they say.

    Not a year that bounds a period ("since 2019"), nor one after ``latest_year`` (the newest
    source's year): that asks about the present, which the newest source answers as of its date.
    """
    tokens = words(question)
    absent = []
    for i, token in enumerate(tokens):
        if not (len(token) == 4 and token.isdigit() and 1000 <= int(token) <= 2099):
            continue
        if token in vocabulary.counts or (i and tokens[i - 1] in _PERIOD_BOUNDS):
            continue
        if latest_year is not None and int(token) > latest_year:
            continue
        absent.append(token)
    return list(dict.fromkeys(absent))


# A name of two or more words, each capitalised then lower case ("Mullah Omar", "Supreme
# Court"): acronyms ("IS", "CSTO"), hyphenated and possessive words end it
_NAME_WORD = re.compile(r"[A-Z][a-z]+")
_PUNCTUATION = '?!.,;:()"“”'
NAME_GAP = 2  # words a source may put inside a name ("President Ashraf Ghani" for "President Ghani")


def name_phrases(question: str) -> list[tuple[str, ...]]:
    """The names of two or more words written inside the question (not its first word), lower
    case; none in a question written in Title Case ("Who Is The Envoy"), where capitals name nothing."""
    tokens = question.split()
    if any(_NAME_WORD.fullmatch(t.strip(_PUNCTUATION)) and t.lower() in STOPWORDS for t in tokens[1:]):
        return []
    phrases: list[tuple[str, ...]] = []
    run: list[str] = []
    for i, token in enumerate(tokens):
        word = token.strip(_PUNCTUATION)
        bare = re.sub(r"['’]s$", "", word)  # "Russia's": a name, and the end of one
        ends = True
        if i and _NAME_WORD.fullmatch(bare):
            run.append(bare.lower())
            ends = bare != word or token.rstrip(_PUNCTUATION) != token
        if ends:
            if len(run) > 1:
                phrases.append(tuple(run))
            run = []
    return phrases


_CAPITALISED_WORD = re.compile(r"(?<![\w’'-])([A-Z][a-z]+)(?![\w’'-])")


def one_word_names(texts: Iterable[str]) -> frozenset[str]:
    """Lower-cased words the corpus writes capitalised as a name of their own, with no capitalised
    word before or after ("in Kunduz.", "Putin said"; not "Omar" of "Omar Nessar"). Sentence
    starts count too: a name written alone somewhere is one."""
    single: set[str] = set()
    for text in texts:
        for match in _CAPITALISED_WORD.finditer(text):
            before = text[max(0, match.start() - 30) : match.start()].split()
            after = text[match.end() : match.end() + 30].split()
            neighbours = [before[-1] if before else "", after[0] if after else ""]
            if not any(_NAME_WORD.match(n.strip(_PUNCTUATION)) for n in neighbours):
                single.add(match.group(1).lower())
    return frozenset(single)


def _writes(name: Sequence[str], texts: Iterable[str]) -> bool:
    """Whether one of ``texts`` has the words of ``name`` in order, :data:`NAME_GAP` words apart
    at most, any of them inflected or spelled with "s" for "z"."""
    gap = rf"\w*\W+(?:\w+\W+){{0,{NAME_GAP}}}"
    written = re.compile(r"\b" + gap.join(re.escape(w).replace("z", "[sz]") for w in name), re.IGNORECASE)
    return any(written.search(text) for text in texts)


def _parted(phrase: tuple[str, ...], single_names: Container[str]) -> list[tuple[str, ...]]:
    """The runs of two or more words of ``phrase`` between its words in ``single_names``."""
    parts: list[tuple[str, ...]] = []
    run: list[str] = []
    for word in (*phrase, ""):
        if word and word not in single_names:
            run.append(word)
            continue
        if len(run) > 1:
            parts.append(tuple(run))
        run = []
    return parts


def absent_names(
    question: str,
    vocabulary: Vocabulary,
    texts_with: Callable[[Sequence[str]], Iterable[str]],
    single_names: Container[str] = frozenset(),
) -> list[str]:
    """Names in the question that no source writes, though each of their words is in the corpus
    ("Mullah Omar" where the sources have "Mullah Abdulsalam" and "Omar Nessar"): someone the
    sources do not mention. ``texts_with(words)`` gives the passages holding all those words; a
    name counts as written when one of them has its words in order, at most :data:`NAME_GAP`
    words apart. A name with a word the corpus lacks is left to :func:`missing_terms`.

    A word the corpus writes as a name of its own (``single_names``, :func:`one_word_names`)
    parts a run of capitals: a terse question lists names side by side ("Taliban Moscow Format
    meetings", "what do Putin Kabulov think"), and only what stands between them, two words or
    more, is taken for one name."""
    absent = []
    for name in (part for phrase in name_phrases(question) for part in _parted(phrase, single_names)):
        if not all(w in vocabulary.counts for w in name):
            continue
        # a longer name is written when its last two words are ("UN Security Council" writes
        # "United Nations Security Council"); "-ize" is "-ise" ("Shanghai Cooperation Organisation")
        written = [name] if len(name) == 2 else [name, name[-2:]]
        british = [tuple(w.replace("z", "s") for w in words_) for words_ in written]
        if not any(_writes(words_, texts_with(words_)) for words_ in dict.fromkeys(written + british)):
            absent.append(" ".join(w.capitalize() for w in name))
    return absent


def _spelling_variant(word: str, vocabulary: Vocabulary) -> bool:
    """Whether the corpus spells ``word`` another way: "-ize" as "-ise", or, for a word that is
    not an English word, one letter off with the same first and last letters ("Kofi" for
    "Koofi", "Zhirnof" for "Zhirnov"; not "Panj" for "pan", nor "flights" for "fights")."""
    from .lexical import _stemmer

    british = re.sub(r"iz(e|ed|es|ing|ation|ations)$", r"is\1", word)
    if british != word and (british in vocabulary.counts or _stemmer().stemWord(british) in vocabulary.stems):
        return True
    if word in vocabulary.known or len(word) < 4:
        return False
    near = closest_word(word, vocabulary.counts, limit=1)
    return near is not None and near[0] == word[0] and (near[-1] == word[-1] or len(word) >= 6)


# Where a question names what it asks about: "how many X", "what/which X", "the X of"
# "how many X": the thing counted, or what qualifies it ("how many Afghan refugees": see focus_words)
_COUNTED = re.compile(r"\bhow\s+(?:many|much|long|far|big|large|old|high)\s+(?:in\s+)?([a-z0-9]+)(?:\s+([a-z0-9]+))?")
_FOCUS_SLOTS = (
    re.compile(r"\b(?:the|a|an)\s+([a-z0-9]+)(?:\s+([a-z0-9]+))?\s+(?:of|in)\b"),
    re.compile(
        r"\b(?:is|are|was|were)\s+there\s+(?:any\s+|a\s+|an\s+)?([a-z0-9]+)(?:\s+([a-z0-9]+))?"
        r"(?:\s+([a-z0-9]+))?"
    ),
)
# Words that say what kind of answer is wanted, not what it is about: "the purpose of", "the
# name of", "the main thrust of" (what a source says, in whatever words). ("Which river" names a
# type the answer need not use either: "which"/"what" slots are left to the share of missing words.)
_ANSWER_FORM_TEXT = """purpose purposes reason reasons motive motives motivation aim aims goal goals cause
    causes effect effects impact consequences role significance meaning view views opinion position stance name
    names number amount date year years time kind type sort way ways extent level size
    thrust gist essence crux upshot tenor drift substance nature focus emphasis direction outline summary"""
ANSWER_FORM_WORDS = frozenset(_ANSWER_FORM_TEXT.split())


def focus_words(question: str) -> set[str]:
    """Words where a question names its focus ("how many mosques", "the population of", "are
    there direct flights"), plus names written capitalised inside the question ("Akhundzada")."""
    text = " ".join(words(question))
    names = _name_words(question)
    slots = {w for pattern in _FOCUS_SLOTS for m in pattern.finditer(text) for w in m.groups() if w}
    for counted in _COUNTED.finditer(text):
        # the word after a capitalised qualifier is the thing counted ("How many Afghan refugees");
        # after any other word it may be the verb ("how many principles underpin")
        slots.update(w for w in counted.groups()[: 2 if counted.group(1) in names else 1] if w)
    return {w for w in slots if w not in STOPWORDS and w not in ANSWER_FORM_WORDS} | names


def focus_missing(
    question: str, missing: Sequence[str], topic_words: frozenset[str], common: frozenset[str] = frozenset()
) -> list[str]:
    """The missing words that carry the question's focus.

    A missing word counts when it stands where a question names its focus or is a name
    (:func:`focus_words`: "population" in "What is the population of Afghanistan?",
    "Akhundzada"), or when, besides the corpus-wide topic words and very common words
    (``common``), missing words are most of the question. A question with as many specific
    corpus words as unknown ones ("When did the Taliban overrun Kunduz?", "did the heroin
    trade push moscow into talking") is still answered."""
    if not missing:
        return []
    focus = focus_words(question)
    focused = [w for w in missing if w in focus]
    if focused:
        return focused
    known = [
        w
        for w in dict.fromkeys(usable_words(question))
        if w not in topic_words and w not in missing and w not in common
    ]
    return list(missing) if len(missing) > len(known) else []

"""The lexical side of retrieval: tokens, BM25, and correcting misspelled query words.

Everything is a plain function or a small class over lists and arrays, so it can be tested
with a handful of strings.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

# A short English stop list: words that carry no topic. (bm25s's list drops "not", "no",
# which matter to questions like "Does Russia not recognise ...", so we keep our own.)
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t d ll m re ve y tell say said says please"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[a-z0-9]+")
SOURCE_TYPO_MAX_COUNT = 3  # a corpus word seen more often than this is never a typo
SOURCE_TYPO_RATIO = 50  # ... and a rarer one only yields to a word this many times as common


def _bm25s():
    import bm25s

    # bm25s sets its own logger to DEBUG on import; its progress chatter is not ours to show
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words; apostrophes join ("Russia’s" → "russias" is avoided)."""
    text = re.sub(r"['’]s\b", "", text.lower())
    return _WORD.findall(text)


def _phrase(phrase: str) -> re.Pattern[str]:
    """``phrase`` as whole words, in any case ("notion" is not found in "emotional")."""
    return re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)


def plain_reading(text: str, plain_wording: Sequence[tuple[str, str]]) -> str:
    """``text`` with each phrase of ``plain_wording`` replaced by its plain English: what the
    model reads of a machine-reworded document ("safety pursuits" → "security interests")."""
    for phrase, plain in plain_wording:
        text = _phrase(phrase).sub(plain.replace("\\", "\\\\"), text)
    return text


def with_plain_wording(text: str, plain_wording: Sequence[tuple[str, str]]) -> str:
    """What the keyword index reads of a passage: its text, then the plain English of each phrase
    of ``plain_wording`` it holds. The document's own words stay: a question may quote them."""
    plain = [p for phrase, p in plain_wording if _phrase(phrase).search(text)]
    return f"{text}\n{' '.join(plain)}" if plain else text


def tokenize(text: str) -> list[str]:
    """BM25 tokens: words less stop words, Snowball-stemmed."""
    kept = [w for w in words(text) if w not in STOPWORDS]
    return _stemmer().stemWords(kept) if kept else []


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over a list of texts."""

    def __init__(self, texts: Sequence[str]) -> None:
        bm25s = _bm25s()
        self.size = len(texts)
        self.retriever = bm25s.BM25()
        tokens = [tokenize(t) or ["\u2400"] for t in texts]  # an empty text still needs a row
        self.retriever.index(tokens, show_progress=False)

    def save(self, folder: Path) -> None:
        """Write the index (bm25s's files) into ``folder``."""
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """An index written by :meth:`save`, memory-mapped."""
        index = cls.__new__(cls)
        index.retriever = _bm25s().BM25.load(str(folder), mmap=True, show_progress=False)
        index.size = int(index.retriever.scores["num_docs"])
        return index

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no query word is known)."""
        tokens = [t for t in tokenize(query) if t in self.retriever.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)


@dataclass(frozen=True)
class Vocabulary:
    """Corpus words with their frequencies, for spelling correction and topic words."""

    counts: dict[str, int]
    document_frequency: dict[str, float]  # share of passages that contain the word
    known: Container[str]  # words that are spelled right even if the corpus lacks them (word_set)
    stems: frozenset[str] = frozenset()  # stems of the corpus words: "brokers" is no typo of "broker"

    @classmethod
    def build(cls, passages: Sequence[str], known_words: Iterable[str] = ()) -> Vocabulary:
        counts: Counter[str] = Counter()
        containing: Counter[str] = Counter()
        for passage in passages:
            passage_words = words(passage)
            counts.update(passage_words)
            containing.update(set(passage_words))
        total = max(1, len(passages))
        stems = frozenset(_stemmer().stemWords(list(counts))) if counts else frozenset()
        return cls(dict(counts), {w: n / total for w, n in containing.items()}, word_set(known_words), stems)

    def correct(self, query: str) -> str:
        """The query with misspelled words corrected ("talibn rusia" → "taliban rusia").

        Only a word that is not a real word or name may change: a known English word or a word
        the corpus uses (as itself or inflected) is never corrected, save the source's own rare
        misspelling of a far more common corpus word ("rusia"). Others are replaced by the most
        common corpus word within a small edit distance (1 for short words, 2 for longer ones),
        if any; a word written capitalised may be a name the corpus lacks ("Panj river" stays),
        and changes only when it is plainly a corpus name mistyped (:meth:`_correct_name`).
        """
        return re.sub(r"[A-Za-z]{4,}", lambda m: self._correct_word(m.group(0)), query)

    def _correct_word(self, word: str) -> str:
        lower = word.lower()
        if lower in self.known:
            return word
        seen = self.counts.get(lower, 0)
        if word[0].isupper():
            return self._correct_name(word, lower, seen)
        if seen:
            # a corpus word is left alone, unless it is the source's own rare typo of a word it
            # spells right far more often ("rusia" once, "russia" 300 times): one letter off
            if seen > SOURCE_TYPO_MAX_COUNT:
                return word
            common = {w: n for w, n in self.counts.items() if n >= SOURCE_TYPO_RATIO * seen}
            return closest_word(lower, common, limit=1) or word
        if _stemmer().stemWord(lower) in self.stems:
            return word
        return closest_word(lower, self.counts) or word

    def _correct_name(self, word: str, lower: str, seen: int) -> str:
        """A capitalised word may be a name the corpus does not hold ("Panj"): it changes only
        when it is one edit (or two letters swapped) from a corpus word of the same first letter
        and it is no corpus word, inflected or not, and five letters or more ("Tlaiban",
        "Mocsow", "Kudnuz"); written with the capital it had."""
        if seen or len(word) < NAME_TYPO_MIN_LETTERS or _stemmer().stemWord(lower) in self.stems:
            return word
        near = closest_word(lower, self.counts, limit=1)
        if near is None or near[0] != lower[0]:
            return word
        return near.upper() if word.isupper() else near.capitalize()

    def topic_words(self, share: float = 0.3) -> frozenset[str]:
        """Words in more than ``share`` of passages: they say what the whole corpus is about."""
        return frozenset(w for w, f in self.document_frequency.items() if f > share and w not in STOPWORDS)


NAME_TYPO_MIN_LETTERS = 5  # a shorter capitalised word one edit from a corpus word is as likely a name
ENGLISH_MIN_COUNT = 50  # pyspellchecker's counts: a word seen less often is not taken as English
RANKED_KEPT = 10_000  # the most frequent English words kept in order (coverage.EVERYDAY_WORDS)


class WordList:
    """A large word list held compactly: a MARISA trie of the words (marisa-trie), 0.3 MiB for
    the 128k English words of :func:`english_words` where a frozenset of them kept ~26 MiB
    resident (bench.memory), plus a small set of words added to it (:meth:`__or__`). Tells
    membership and iterates, which is all the searcher asks of its known words."""

    def __init__(self, words: Iterable[str] = (), *, trie: Any = None, extra: frozenset[str] = frozenset()) -> None:
        import marisa_trie

        self._trie = trie if trie is not None else marisa_trie.Trie(words)
        self._extra = extra

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and (word in self._extra or word in self._trie)

    def __iter__(self) -> Iterator[str]:
        yield from self._trie
        yield from sorted(self._extra)

    def __len__(self) -> int:
        return len(self._trie) + len(self._extra)

    def __or__(self, words: Iterable[str]) -> WordList:
        """This list and ``words``, the trie shared (a word already in it is not added again)."""
        added = frozenset(w for w in words if w not in self)
        return WordList(trie=self._trie, extra=self._extra | added)


def word_set(words: Iterable[str]) -> Container[str]:
    """``words`` as something to look words up in: a WordList or frozenset as it is, anything else
    made a frozenset."""
    return words if isinstance(words, (WordList, frozenset)) else frozenset(words)


def _frequencies() -> dict[str, int]:
    """pyspellchecker's English word frequencies (shipped in the package): about 30 MiB of Python
    objects while they last, and a second or so to parse."""
    from spellchecker import SpellChecker

    return SpellChecker(distance=1).word_frequency.dictionary


def _english(frequencies: dict[str, int], min_count: int) -> WordList:
    return WordList(sorted(w for w, n in frequencies.items() if n >= min_count and w.isalpha()))


def _most_frequent(frequencies: dict[str, int], top: int) -> tuple[str, ...]:
    return tuple(w for w, _ in sorted(frequencies.items(), key=lambda item: -item[1])[:top])


@lru_cache(maxsize=1)
def _english_word_lists() -> tuple[WordList, tuple[str, ...]]:
    """Read once per process (start-up asks for three word sets, and used to parse the list
    thrice): the default :func:`english_words` and the RANKED_KEPT most frequent words in order.
    The ranked words are copied out of the parsed list before it goes: its strings, kept alive,
    would hold on to the memory of the whole list."""
    frequencies = _frequencies()
    english, ranked = _english(frequencies, ENGLISH_MIN_COUNT), "\n".join(_most_frequent(frequencies, RANKED_KEPT))
    del frequencies
    return english, tuple(ranked.split("\n"))


@lru_cache(maxsize=1)
def english_words(min_count: int = ENGLISH_MIN_COUNT) -> WordList:
    """Common English words (pyspellchecker's frequency list): a word listed here is spelled right
    even if the corpus lacks it ("overthrew" is not "overthrow")."""
    return _english_word_lists()[0] if min_count == ENGLISH_MIN_COUNT else _english(_frequencies(), min_count)


@lru_cache(maxsize=4)
def common_english_words(top: int = 1000) -> frozenset[str]:
    """The ``top`` most frequent English words ("use", "ever", "happen"): words every question
    may hold, never what it is about."""
    ranked = _english_word_lists()[1] if top <= RANKED_KEPT else _most_frequent(_frequencies(), top)
    return frozenset(ranked[:top])


def closest_word(word: str, counts: dict[str, int], limit: int | None = None) -> str | None:
    """The most frequent corpus word within ``limit`` edits of ``word`` (by default 1 for words
    of up to five letters, 2 for longer ones), if any."""
    from rapidfuzz.distance import OSA
    from rapidfuzz.process import extract

    if limit is None:
        limit = 1 if len(word) <= 5 else 2
    # optimal string alignment: two letters swapped ("Tlaiban") is one edit, as typists make it
    matches = extract(word, list(counts), scorer=OSA.distance, score_cutoff=limit, limit=20)
    if not matches:
        return None
    from rapidfuzz.fuzz import ratio

    # Nearest first; then the word that keeps more of the typed letters ("kabulv" → "kabulov",
    # not "kabul"); then a shared first letter; then the more common word.
    matches.sort(key=lambda m: (m[1], -ratio(word, m[0]), m[0][0] != word[0], -counts[m[0]]))
    return matches[0][0]


def strip_words(query: str, drop: frozenset[str]) -> str:
    """The query without the given words (case-insensitive), or the query if nothing is left."""
    kept = [w for w in re.findall(r"\S+", query) if re.sub(r"[^a-z0-9]", "", w.lower()) not in drop]
    stripped = " ".join(kept)
    return stripped if words(stripped) else query

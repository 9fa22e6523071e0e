"""Answer a question from a loaded index: candidates, fused scores, cited passages.

The steps, each a function of :mod:`embeddings.fusion` or :mod:`embeddings.lexical`:

1. Correct misspelled corpus terms ("talibn" → "taliban").
2. Encode the question, one forward pass: its pooled vector, its focus vector (the mean of its
   token vectors without the corpus-wide topic words) and its token vectors
   (:mod:`embeddings.query_encoding`).
3. Gather candidates: nearest passages and sentences (FAISS), best BM25 passages.
4. Score candidates: passage, best-sentence and focus cosines, BM25 and token-level MaxSim;
   abstain when nothing is similar enough.
5. Keep the best non-overlapping passages, each with its citation and the sentence that matches best.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from . import attribution, coverage, cues, newest, temporal
from .artifacts import Artifacts, keyword_texts
from .batching import QueryBatcher
from .fusion import (
    Weights,
    fuse,
    maxsim,
    maxsim_in_place,
    rerank_with,
    segment_max,
    segment_rows,
    select_non_overlapping,
    should_abstain,
)
from .index import DocumentRecord, IndexData, TextEncoder
from .lexical import LexicalIndex, Vocabulary, strip_words, words
from .query_encoding import QuestionVectors, encode_questions
from .sources import Citation
from .vector_index import VectorIndex, make_vector_index

TOKENS_IN_MEMORY_BYTES = 256 * 2**20  # up to this, passage token vectors are held as float32
# a corpus of at most this many times ``candidates`` passages is scored whole (no candidate search)
SCORE_ALL_UP_TO = 4
# byte budgets of the caches (a question's token vectors take up to 256 x 384 float32: 384 KiB;
# a 300-character question about 100 KiB). The question cache's is retrieval.question_cache_mb.
QUESTION_CACHE_BYTES = 16 * 2**20
TOKEN_CACHE_BYTES = 96 * 2**20
MAX_QUERY_CHARS = 1000  # the model reads 256 tokens at most; longer questions only cost time


@dataclass(frozen=True)
class Hit:
    """One passage of a result, with what the bot needs to show and cite it."""

    rank: int
    score: float
    doc_id: str
    doc_key: str
    citation: Citation
    text: str
    start: int  # character offsets of the passage in the cleaned document text
    end: int
    highlight: tuple[int, int]  # the best-matching sentence, as offsets into ``text``

    @property
    def title(self) -> str:
        return self.citation.title

    @property
    def date(self) -> str:
        """The date of the passage's document as the sources file gives it ("" when undated)."""
        return self.citation.date

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "text": self.text,
            "doc_id": self.doc_id,
            "title": self.title,
            "citation": self.citation.text(),
            "date": self.date or "undated",
            "start": self.start,
            "end": self.end,
        }


NO_WORDS, OFF_TOPIC, NOT_COVERED = "no_words", "off_topic", "not_covered"  # why a question was declined


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    abstained: bool
    corrected_query: str | None = None  # set when spelling correction changed the question
    total: int = 0  # how many non-overlapping passages are available for paging
    best_similarity: float = 0.0
    declined_reason: str | None = None  # NO_WORDS, OFF_TOPIC or NOT_COVERED when abstained
    missing_terms: tuple[str, ...] = ()  # NOT_COVERED: the question's words no source uses
    closest: list[Hit] = field(default_factory=list)  # NOT_COVERED: nearest passages, which do not answer
    current: bool = False  # the question asks about the present: the newest source comes first

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "abstained": self.abstained,
            "declined_reason": self.declined_reason,
            "missing_terms": list(self.missing_terms),
            "current_question": self.current,
            "results": [h.to_json() for h in self.hits],
            "closest": [h.to_json() for h in self.closest],
        }


@dataclass(frozen=True)
class Context:
    """Text around a passage, for the bot's "Context" button."""

    doc_id: str
    citation: Citation
    text: str
    passage: tuple[int, int]  # where the passage sits inside ``text``


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    doc_key: str
    citation: Citation
    passages: int
    characters: int


@dataclass
class _Ranked:
    """All candidates of one question, best first, before paging."""

    order: list[int]
    scores: np.ndarray
    candidates: np.ndarray
    best_similarity: float
    highlights: dict[int, int] = field(default_factory=dict)
    current: bool = False  # a question about the present (newest source first)
    small_talk: float = -1.0  # the question's best cosine with the small-talk probes


class Searcher:
    """Search one loaded index. Thread-safe for concurrent ``search`` calls."""

    def __init__(
        self,
        data: IndexData,
        encoder: TextEncoder,
        *,
        weights: Weights,
        abstain_below: float,
        candidates: int = 100,
        max_results: int = 30,
        spelling_correction: bool = True,
        known_words: Iterable[str] = (),
        cache_size: int = 1024,
        question_cache_bytes: int = QUESTION_CACHE_BYTES,
        rerank: int = 40,
        exact_below: int = 100_000,
        vector_index: Callable[[np.ndarray], VectorIndex] | None = None,
        recency_margin: float = 0.0,
        history_years: float = 0.0,
        newest_ratio: float = 0.0,
        kind_weights: Mapping[str, float] | None = None,
        common_words: frozenset[str] = frozenset(),
        everyday_words: frozenset[str] = frozenset(),
        abstain_margin: float = 0.0,
        source_weights: Mapping[str, float] | None = None,
        artifacts: Artifacts | None = None,
        after_batch: Callable[[], object] | None = None,
    ) -> None:
        self.data = data
        self.encoder = encoder
        self.weights = weights
        self.abstain_below = abstain_below  # the floor of the off-topic threshold
        self.abstain_margin = abstain_margin  # above the corpus's best similarity to small talk
        self.recency_margin = recency_margin  # current questions: newest first within this of the best
        self.newest_ratio = newest_ratio  # ... and the newest source's best passage first at this share of the best
        self.kind_weights = dict(kind_weights or {})  # why/when/how_many/who: see cues.kind_boost
        self.source_weights = dict(source_weights or {})  # named/authors: see attribution.source_boost
        self.common_words = common_words
        self.everyday_words = everyday_words  # English words too common to tie a question to the corpus
        self.n_candidates = candidates
        self.max_results = max_results
        self.rerank = rerank  # how many of the best candidates MaxSim re-scores
        self.spelling_correction = spelling_correction
        self.passages = np.asarray(data.passages)
        # what the build saved (embeddings/artifacts.py) is loaded; what it lacks is built here
        saved = artifacts or Artifacts()
        texts = [data.passage_text(i) for i in range(len(self.passages))]
        if saved.lexical is None or saved.vocabulary is None:
            keyword_text = keyword_texts(data.documents, self.passages)  # what the build's artifacts read
        self.lexical = saved.lexical if saved.lexical is not None else LexicalIndex(keyword_text)
        self.vocabulary = (
            saved.vocabulary if saved.vocabulary is not None else Vocabulary.build(keyword_text, known_words)
        )
        self.topic_words = self.vocabulary.topic_words()
        self.passage_vectors = np.asarray(data.passage_vectors)
        self.sentence_vectors = np.asarray(data.sentence_vectors)
        # by default FAISS: exact search for small corpora, IVF above ``exact_below`` (see
        # vector_index.py and bench/); ``vector_index`` lets another backend slot in
        build = vector_index or (lambda vectors: make_vector_index(vectors, exact_below))
        use_saved = vector_index is None
        self.passage_index = (
            saved.passage_index if use_saved and saved.passage_index is not None else build(self.passage_vectors)
        )
        self.sentence_index = (
            saved.sentence_index if use_saved and saved.sentence_index is not None else build(self.sentence_vectors)
        )
        # which passage starts at each sentence, to map a matching sentence to its passages
        self.first_sentence = self.passages["first"]
        self._cache: BoundedCache[str, QuestionVectors] = BoundedCache(cache_size, question_cache_bytes)
        # the focus vector pooled from the question's own tokens (one forward pass), when the
        # encoder gives token states; otherwise the stripped text is encoded as well
        self.focus_from_tokens = callable(getattr(encoder, "token_states", None))
        self.focus_topic_weight = 0.0  # query_encoding.focus_vector: 0 is the plain mean of the focus tokens
        self._batcher = QueryBatcher(self.search_many, after_batch=after_batch)
        # token vectors of every passage, back to back, stored by the index build (see index.py)
        self.token_vectors = np.asarray(data.token_vectors)  # float16, memory-mapped
        if self.token_vectors.nbytes <= TOKENS_IN_MEMORY_BYTES // 2:
            # a small corpus's tokens fit in memory as float32: no conversion per question (MaxSim
            # over float16 rows took 2-4 ms more per question). The float32 copy replaces the
            # float16 one in ``data`` too: one copy in memory, not both (15 MiB on the seeds), and
            # another searcher over the same data (citebot eval's grid) converts nothing.
            self.token_vectors = self.token_vectors.astype(np.float32, copy=False)
            data.token_vectors = self.token_vectors
        self.token_lengths = np.asarray(data.token_lengths, dtype=np.intp)
        self.token_starts = data.token_starts
        self._passage_token_cache: BoundedCache[int, np.ndarray] = BoundedCache(20_000, TOKEN_CACHE_BYTES)
        # per passage: the time it speaks of (newest-first ranking: its document's date, or the
        # years it names when they are history, temporal.passage_time) and its look (cues.passage_features)
        doc_dates = [temporal.date_value(d.citation.date) for d in data.documents]
        self.passage_dates = np.array(
            [
                temporal.passage_time(text, doc_dates[int(doc)], history_years)
                for text, doc in zip(texts, self.passages["doc"], strict=True)
            ],
            dtype=np.float64,
        )
        self.passage_features = cues.feature_matrix(texts, self.topic_words)
        dated = [int(d) for d in doc_dates if d != temporal.UNDATED]
        self.latest_year = max(dated) if dated else None  # a year after it asks about the present
        self.citations = [d.citation for d in data.documents]
        self.passage_names_authors = np.array(
            [
                attribution.names_its_authors(text, self.citations[int(doc)])
                for text, doc in zip(texts, self.passages["doc"], strict=True)
            ],
            dtype=bool,
        )
        # sentences fit to be the bold one: not a bare reference like "(Shahryar, 2016:1)."
        self.sentence_content = np.array(
            [cues.has_content(data.sentence_text(i)) for i in range(len(data.sentences))], dtype=bool
        )
        self.calibration = coverage.Calibration.from_dict(data.manifest.get("calibration")) or coverage.calibrate(
            encoder, self.passage_vectors, self.sentence_vectors[self.sentence_content]
        )
        # questions closer to one of these than to any passage are small talk, whatever the corpus holds
        self.small_talk_vectors = (
            np.asarray(data.small_talk_vectors, dtype=np.float32)
            if len(self.passages)
            else np.zeros((0, self.passage_vectors.shape[1]), np.float32)
        )
        # words a question may use that no passage holds as a word: the citations' (an author's
        # name) and the initials of the corpus's names ("ISIL" for "Islamic State of Iraq and Levant")
        self.known_elsewhere = frozenset(
            w for d in data.documents for w in words(d.citation.text())
        ) | coverage.corpus_acronyms(texts)
        self.hyphenated = coverage.hyphenated_words(texts)  # "delisted" is asked of "de-listing"
        # "IEA" of one source is "Islamic Emirate of Afghanistan" of another: a question is
        # searched with both (coverage.expand_acronyms)
        self.acronym_names = coverage.acronym_names(texts)
        self.one_word_names = coverage.one_word_names(texts)  # "Herat Badakhshan" is two names, not one
        self.rare_postings = coverage.rare_word_sentences(
            (data.sentence_text(i) for i in range(len(data.sentences))),
            self.vocabulary.document_frequency,
            self.common_words | self.topic_words,
        )

    def off_topic_below(self, question: str) -> float:
        """A question whose best similarity is below this is off topic: the corpus's own similarity
        to small talk and random text (coverage.calibrate) plus ``abstain_margin``, never below
        ``abstain_below``; lower for a question naming a rare phrase of the corpus."""
        calibration = self.calibration
        if coverage.shares_rare_phrase(question, self.rare_postings):
            return max(self.abstain_below, calibration.lenient_threshold)
        return max(self.abstain_below, calibration.threshold + self.abstain_margin)

    @property
    def uses_tokens(self) -> bool:
        """Whether MaxSim takes part: it is weighted and the encoder can give token vectors."""
        return (
            bool(self.weights.token_maxsim) and hasattr(self.encoder, "encode_with_tokens") and len(self.passages) > 0
        )

    # ------------------------------------------------------------------------------ questions

    def search(self, query: str, k: int = 3, offset: int = 0) -> SearchResult:
        """The passages ranked ``offset .. offset+k`` for ``query`` (or an abstention).

        Safe to call from many threads at once: concurrent questions share one encode."""
        return self._batcher.submit(query, k, offset)

    def search_many(self, queries: Sequence[str], k: int = 3, offset: int = 0) -> list[SearchResult]:
        """Answer several questions, encoding them in one batch."""
        prepared = [self.prepare(q) for q in queries]
        encoded = self._encode([searched for _, _, searched in prepared])
        results = []
        for (query, corrected, searched), vectors in zip(prepared, encoded, strict=True):
            if not coverage.usable_words(corrected):
                results.append(SearchResult(query, [], abstained=True, declined_reason=NO_WORDS))
                continue
            ranked = self.rank(searched, vectors.pooled, vectors.focus, vectors.tokens if self.uses_tokens else None)
            results.append(self._result(query, corrected, ranked, k, offset))
        return results

    def forget_questions(self) -> None:
        """Empty the cache of question embeddings (benchmarks time cache misses)."""
        self._cache.clear()

    def prepare(self, query: str) -> tuple[str, str, str]:
        """(query, corrected query, searched query): the question as asked (tidied), as shown
        back ("Showing results for ...") and checked for coverage, and as encoded and ranked
        (with the corpus's acronyms and their names beside each other)."""
        # runs of punctuation ("?!", ",,,") say nothing more than their first mark
        query = re.sub(r"([^\w\s])[^\w\s]+", r"\1", " ".join(query.split()))[:MAX_QUERY_CHARS]
        if not coverage.usable_words(query):
            return query, query, query  # declined without a look at the model ("😀<b>&" × 3000)
        # the sources' spelling of a compound first: "counterterrorism" is no typo to correct
        corrected = coverage.hyphenate_like_corpus(query, self.hyphenated, self.vocabulary.counts)
        corrected = self.vocabulary.correct(corrected) if self.spelling_correction else corrected
        corrected = cues.literal_relations(corrected)  # shown as "Showing results for ...", as a correction is
        return query, corrected, coverage.expand_acronyms(corrected, self.acronym_names, self.vocabulary.known)

    def rank(self, query: str, q: np.ndarray, q_focus: np.ndarray, q_tokens: np.ndarray | None = None) -> _Ranked:
        """Score the candidates of one question and order them, overlapping ones removed.

        ``q_tokens`` are the question's token vectors, for MaxSim; without them it is left out."""
        bm25_all = self.lexical.scores(query)
        candidates = self._candidates(q, q_focus, bm25_all)
        rows = self.passages[candidates]
        lengths = rows["last"] - rows["first"] + 1
        sentence_rows = segment_rows(rows["first"], lengths)
        both = np.stack([q, q_focus], axis=1)  # question and focus: one matrix product, not two
        if len(candidates) == len(self.passages):
            # every passage: score each sentence once (passages overlap, so rows repeat)
            sent = (self.sentence_vectors @ both)[sentence_rows]
            dense = self.passage_vectors @ both
        else:
            sent = self.sentence_vectors[sentence_rows] @ both
            dense = self.passage_vectors[candidates] @ both
        sent_q, sent_focus = sent[:, 0], sent[:, 1]
        dense_passage = dense[:, 0]
        dense_sentence = segment_max(sent_q, lengths)
        dense_focus = (dense[:, 1] + segment_max(sent_focus, lengths)) / 2
        scores = fuse(dense_passage, dense_sentence, dense_focus, bm25_all[candidates], self.weights)
        kinds = cues.question_kinds(query)
        if kinds and self.kind_weights:
            scores = scores + cues.kind_boost(kinds, self.passage_features[candidates], self.kind_weights)
        named = attribution.named_documents(query, self.citations)  # the sources the question names
        if self.source_weights:
            scores = scores + self._source_boost(query, named, rows["doc"], candidates)
        if q_tokens is not None and self.uses_tokens:
            # MaxSim costs a product per passage token: re-score only the best candidates
            top = np.argsort(-scores, kind="stable")[: self.rerank]
            scores = rerank_with(scores, top, self.weights.token_maxsim * self._maxsim(q_tokens, candidates[top]))
        # how close the corpus comes to the question: a bare "OK." or "Hello, readers!" of a
        # document does not count (it is close to small talk, and says nothing)
        content = self.sentence_content[sentence_rows]
        best_sentence = float(sent_q[content].max()) if content.any() else -1.0
        best_similarity = max(float(dense_passage.max()), best_sentence)
        small_talk = float((self.small_talk_vectors @ q).max()) if len(self.small_talk_vectors) else -1.0
        order = select_non_overlapping(
            np.argsort(-scores, kind="stable"), rows["doc"], rows["start"], rows["end"], self.max_results
        )
        current = temporal.is_current_question(query)
        if current:
            order = temporal.prefer_newest(
                np.asarray(order, dtype=np.intp), scores, self.passage_dates[candidates], self.recency_margin
            ).tolist()
            order = self._promote_newest(query, named, order, scores, candidates)
        # the sentence to highlight: best by question and focus similarity together, a sentence
        # that says something before a bare reference
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        combined = sent_q + sent_focus - 10.0 * ~self.sentence_content[sentence_rows]
        highlights = {i: int(np.argmax(combined[offsets[i] : offsets[i + 1]])) for i in order}
        return _Ranked(order, scores, candidates, best_similarity, highlights, current, small_talk)

    def _promote_newest(
        self, query: str, named: frozenset[int], order: list[int], scores: np.ndarray, candidates: np.ndarray
    ) -> list[int]:
        """newest.promote_newest for a current question, unless it names its source ("according
        to the 2024 report": that source, not the newest, is asked) or asks why ("Why does Koofi
        still want ...": the best reason, not the newest passage)."""
        if not self.newest_ratio or not newest.asks_state(query, named):
            return order
        positions = np.asarray(order, dtype=np.intp)
        eligible = np.zeros(len(candidates), dtype=bool)
        texts = [self.data.passage_text(int(candidates[i])) for i in order]
        eligible[positions] = newest.answers_kind(query, texts, self.topic_words)
        return newest.promote_newest(
            positions, scores, self.passage_dates[candidates], self.newest_ratio, eligible
        ).tolist()

    def _source_boost(self, query: str, named: frozenset[int], docs: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """attribution.source_boost of the candidates: the documents the question names (``named``),
        the passages naming their authors when it asks who wrote a source."""
        return attribution.source_boost(
            named,
            attribution.asks_authorship(query),
            docs,
            self.passage_names_authors[candidates],
            self.source_weights.get("named", 0.0),
            self.source_weights.get("authors", 0.0),
        )

    def _candidates(self, q: np.ndarray, q_focus: np.ndarray, bm25_all: np.ndarray) -> np.ndarray:
        n = len(self.passages)
        if n <= SCORE_ALL_UP_TO * self.n_candidates:
            # the searches below would return most of a corpus this small (188 of the 264 seed
            # passages): scoring every passage costs less than finding them, and ranks the same
            return np.arange(n)
        k = min(self.n_candidates, n)
        queries = np.stack([q, q_focus])
        found = [self.passage_index.search(queries, k)[1].ravel()]
        _, sentence_hits = self.sentence_index.search(queries, min(k, len(self.sentence_vectors)))
        # a matching sentence brings every passage that contains it (they start at most a few sentences before)
        hits = sentence_hits.ravel()
        hits = hits[hits >= 0]
        lo = np.searchsorted(self.first_sentence, hits - 8, side="left")
        hi = np.searchsorted(self.first_sentence, hits, side="right")
        window = segment_rows(lo, hi - lo)
        found.append(window[self.passages["last"][window] >= np.repeat(hits, hi - lo)])
        if bm25_all.any():
            found.append(np.argpartition(-bm25_all, k - 1)[:k] if k < n else np.arange(n))
        merged = np.unique(np.concatenate(found))
        return merged[(merged >= 0) & (merged < n)]

    def _result(self, query: str, corrected: str, ranked: _Ranked, k: int, offset: int) -> SearchResult:
        changed = corrected if corrected.lower() != query.lower() else None
        if not attribution.names_a_source(corrected, self.citations) and (
            should_abstain(ranked.best_similarity, self.off_topic_below(corrected))
            or ranked.small_talk >= ranked.best_similarity
            or not self._anchored(corrected, ranked)  # closer to chat than to any passage, or nothing in common
        ):
            return SearchResult(query, [], True, changed, 0, ranked.best_similarity, OFF_TOPIC)
        hits = [
            self._hit(rank, int(ranked.candidates[i]), float(ranked.scores[i]), ranked.highlights[i])
            for rank, i in enumerate(ranked.order[offset : offset + k], start=offset + 1)
        ]
        missing = (
            self.missing_focus(corrected)
            or coverage.absent_names(corrected, self.vocabulary, self._passages_with, self.one_word_names)
            or self._missing_count(corrected, ranked)
            or self._missing_holder(corrected, ranked)
        )
        if missing:
            return SearchResult(
                query,
                [],
                True,
                changed,
                0,
                ranked.best_similarity,
                NOT_COVERED,
                tuple(missing),
                closest=hits,
                current=ranked.current,
            )
        return SearchResult(
            query, hits, False, changed, len(ranked.order), ranked.best_similarity, current=ranked.current
        )

    def _anchored(self, question: str, ranked: _Ranked) -> bool:
        """coverage.anchored over the sentences of the best passages found for the question."""
        if not self.everyday_words:
            return True
        rows = self.passages[ranked.candidates[ranked.order[: self.max_results]]]
        sentences = (self.data.sentence_text(i) for row in rows for i in range(int(row["first"]), int(row["last"]) + 1))
        return coverage.anchored(
            coverage.usable_words(question), self.vocabulary, self.topic_words, self.everyday_words, sentences
        )

    def _passages_with(self, words: Sequence[str]) -> list[str]:
        """The texts of the passages holding every one of ``words`` (or a word of the same stem)."""
        holding = np.logical_and.reduce([self.lexical.scores(w) > 0 for w in words])
        return [self.data.passage_text(int(i)) for i in np.flatnonzero(holding)]

    def _missing_count(self, question: str, ranked: _Ranked) -> list[str]:
        """A "how many" question whose best passage states no number (years aside): the sources
        don't give that count (["how many people died"]); else []."""
        asked = cues.count_asked(question)
        if not asked or not ranked.order or "how_many" not in cues.question_kinds(question):
            return []
        best = self.data.passage_text(int(ranked.candidates[ranked.order[0]]))
        return [] if cues.gives_count(best) else [asked]

    def _missing_holder(self, question: str, ranked: _Ranked, passages: int = 3) -> list[str]:
        """A question for whoever holds a role ("Who is the Taliban's foreign minister?") whose best
        passages name nobody in that role: the sources don't name the holder (["foreign minister"])."""
        role = cues.role_asked(question)
        if not role or not ranked.order:
            return []
        best = (self.data.passage_text(int(ranked.candidates[i])) for i in ranked.order[:passages])
        return [] if any(cues.names_role_holder(text, role, self.topic_words) for text in best) else [role]

    def missing_focus(self, question: str) -> list[str]:
        """The words the question is about that no document uses (empty: the corpus may answer)."""
        missing = coverage.missing_terms(question, self.vocabulary, self.common_words, also_known=self.known_elsewhere)
        return coverage.absent_years(question, self.vocabulary, self.latest_year) + coverage.focus_missing(
            question, missing, self.topic_words, self.common_words
        )

    def _hit(self, rank: int, passage: int, score: float, highlight_sentence: int) -> Hit:
        row = self.passages[passage]
        document = self.data.documents[row["doc"]]
        sentence = self.data.sentences[row["first"] + highlight_sentence]
        start, end = int(row["start"]), int(row["end"])
        return Hit(
            rank,
            score,
            document.doc_id,
            document.key,
            document.citation,
            document.text[start:end],
            start,
            end,
            (int(sentence["start"]) - start, int(sentence["end"]) - start),
        )

    def _maxsim(self, q_tokens: np.ndarray, passages: np.ndarray) -> np.ndarray:
        if len(self.token_lengths):  # stored by the index build, each passage's rows back to back
            return maxsim_in_place(
                q_tokens, self.token_vectors, self.token_starts[passages], self.token_lengths[passages]
            )
        vectors = [self._encoded_tokens(int(i)) for i in passages]
        return maxsim(q_tokens, np.vstack(vectors), np.array([len(v) for v in vectors]))

    def _encoded_tokens(self, passage: int) -> np.ndarray:
        """Token vectors of a passage of an index built without them: encoded now, kept in a cache."""
        cached = self._passage_token_cache.get(passage)
        if cached is None:
            cached = self.encoder.encode_with_tokens(  # type: ignore[attr-defined]  # uses_tokens: it has it
                [self.data.passage_reading(passage)]
            )[0][1]
            self._passage_token_cache.put_all({passage: cached})
        return cached

    def _encode(self, questions: list[str]) -> list[QuestionVectors]:
        """Pooled, focus and token vectors of each question, in one batch, with a small cache:
        repeated questions (More results, inline typing) cost nothing."""
        known = {t: e for t in questions if (e := self._cache.get(t)) is not None}
        missing = [t for t in dict.fromkeys(questions) if t not in known]
        if missing:
            if self.focus_from_tokens:
                vectors = encode_questions(
                    self.encoder,  # type: ignore[arg-type]  # focus_from_tokens: it has token_states
                    missing,
                    self.topic_words,
                    self.focus_topic_weight,
                )
                fresh = dict(zip(missing, vectors, strict=True))
            else:
                fresh = dict(zip(missing, self._encode_texts(missing), strict=True))
            known.update(fresh)
            self._cache.put_all(fresh)
        return [known[t] for t in questions]

    def _encode_texts(self, questions: list[str]) -> list[QuestionVectors]:
        """Without token states: the question and its stripped text, in one batch."""
        focus = [strip_words(q, self.topic_words) for q in questions]
        texts, rows = distinct_within_batch(questions + focus, getattr(self.encoder, "batch_size", 0))
        n = len(questions)
        if self.uses_tokens:
            encoded = self.encoder.encode_with_tokens(texts)  # type: ignore[attr-defined]  # as above
            vectors, tokens = [v for v, _ in encoded], [t for _, t in encoded]
        else:
            vectors = list(self.encoder.encode(texts))
            tokens = [np.zeros((0, self.encoder.dimension), np.float32)] * len(texts)
        return [
            QuestionVectors(vectors[rows[i]].reshape(-1), vectors[rows[n + i]].reshape(-1), tokens[rows[i]])
            for i in range(n)
        ]

    # ------------------------------------------------------------------------------ browsing

    def context(self, doc_key: str, start: int, end: int, chars: int = 700) -> Context | None:
        """The passage at ``start..end`` of a document with about ``chars`` of text on each side,
        cut at sentence boundaries. None if the document or offsets no longer exist."""
        document = self.data.document_by_key(doc_key)
        if document is None or not (0 <= start < end <= len(document.text)):
            return None
        doc_index = self.data.documents.index(document)
        sentences = np.asarray(self.data.sentences)
        mine = sentences[sentences["doc"] == doc_index]
        before = mine[(mine["start"] >= start - chars) & (mine["start"] < start)]
        after = mine[(mine["end"] > end) & (mine["end"] <= end + chars)]
        lo = int(before["start"].min()) if len(before) else start
        hi = int(after["end"].max()) if len(after) else end
        return Context(document.doc_id, document.citation, document.text[lo:hi], (start - lo, end - lo))

    def passage_context(self, doc_key: str, start: int, end: int, chars: int = 700) -> Context | None:
        """:meth:`context` of passage ``start..end`` of document ``doc_key``, or None when the index
        holds no such passage: the document was removed, or changed so that the passage is gone (a
        button made before a rebuild), or the offsets were forged. Only the index in memory is read;
        ``doc_key`` is never used as a path."""
        document = self.document(doc_key)
        if document is None:
            return None
        doc_index = next((i for i, d in enumerate(self.data.documents) if d is document), None)
        if doc_index is None:
            return None
        rows = self.passages
        if not ((rows["doc"] == doc_index) & (rows["start"] == start) & (rows["end"] == end)).any():
            return None
        return self.context(doc_key, start, end, chars)

    def documents(self) -> list[DocumentInfo]:
        counts = self.data.passage_counts()
        return [
            DocumentInfo(d.doc_id, d.key, d.citation, int(counts[i]), len(d.text))
            for i, d in enumerate(self.data.documents)
        ]

    def document(self, doc_key: str) -> DocumentRecord | None:
        return self.data.document_by_key(doc_key)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data.manifest

    @property
    def build_id(self) -> str:
        """The build folder's name (its creation time), e.g. ``20261201T095000123456``."""
        return self.data.path.name


def distinct_within_batch(texts: list[str], batch_size: int) -> tuple[list[str], list[int]]:
    """The texts to encode for ``texts`` and, for each of ``texts``, the row of its vector:
    repeats encoded once when they fit one forward pass of the model (``batch_size`` texts),
    else every text as given. Half the questions keep every word when stripped of the topic
    words, so their focus text is the question again: encoding it once saves a quarter of the
    bot's encoding. A text's vector depends in the 7th or 8th digit on the texts beside it in
    the forward pass (the library pads each batch of length-sorted texts to its longest; packed
    rows, embeddings/packing.py, put texts side by side), which a dropped repeat changes; within
    one forward pass that is all it changes."""
    if len(texts) > batch_size:
        return texts, list(range(len(texts)))
    rows: dict[str, int] = {}
    positions = [rows.setdefault(text, len(rows)) for text in texts]
    return list(rows), positions


Key = TypeVar("Key")
Value = TypeVar("Value")


class BoundedCache(Generic[Key, Value]):
    """A thread-safe least-recently-used map that forgets beyond ``size`` entries or beyond
    ``max_bytes`` (the entries' :func:`nbytes`: array buffers and strings, what grows with
    distinct questions), whichever comes first. An entry larger than the budget is not kept."""

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Key, tuple[Value, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> Value | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put_all(self, items: dict[Key, Value]) -> None:
        with self._lock:
            for key, value in items.items():
                weight = nbytes(key) + nbytes(value)
                old = self._items.pop(key, None)
                if old is not None:
                    self.bytes -= old[1]
                if self.max_bytes is not None and weight > self.max_bytes:
                    continue
                self._items[key] = (value, weight)
                self.bytes += weight
            while self._items and (
                len(self._items) > self.size or (self.max_bytes is not None and self.bytes > self.max_bytes)
            ):
                _, (_, weight) = self._items.popitem(last=False)
                self.bytes -= weight

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)


def nbytes(value: Any) -> int:
    """The memory an entry holds, roughly: array buffers, string lengths, summed over tuples."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 112
    if isinstance(value, str):
        return sys.getsizeof(value)
    if isinstance(value, tuple | list):
        return 56 + sum(nbytes(v) for v in value)
    return 32

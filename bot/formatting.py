"""Pure functions that turn search results into Telegram messages (HTML parse mode) and back.

Nothing here talks to Telegram or searches: every function takes plain data and returns
strings, keyboards or small records, so all of it is unit-tested without a network.

Rules every message follows:

* all source and user text goes through :func:`bot.markup.esc` (``html.escape``); the only tags
  used are ``b``, ``i``, ``code``, ``a href`` and ``blockquote``, always closed in order;
* no message is longer than Telegram's limit as Telegram counts it: :mod:`bot.markup` measures,
  clips and fits; the buttons and their callback data are :mod:`bot.keyboards`'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import InlineKeyboardMarkup

from embeddings.search import NO_WORDS, NOT_COVERED, Context, DocumentInfo, Hit, SearchResult
from embeddings.sources import Citation
from embeddings.temporal import as_of_label, date_value

from .keyboards import Votes, answer_keyboard
from .markup import (
    ELLIPSIS,
    MAX_MESSAGE,
    clean_text,
    clip,
    clip_left,
    esc,
    fit_html,
    html_len,
    html_to_text,
    squash,
    tidy,
    utf16_len,
)

COMPACT_PASSAGE = 420  # units per passage in group answers (the best sentence is kept whole if it fits)
MAX_INLINE_TITLE = 120
MAX_INLINE_DESCRIPTION = 140

EXAMPLE_QUESTIONS = (
    "Why did Russia start talking to the Taliban?",
    "Who overthrew King Zahir Shah?",
    "Has Russia recognised the Taliban government?",
)


# ------------------------------------------------------------------------------------------ citations


def safe_url(url: str) -> str | None:
    """The URL if it can go in an ``href`` (http or https with a host), else None."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def citation_html(citation: Citation, *, max_title: int = 200) -> str:
    """Title (linked to the source when its URL is known), then author or publisher, then the
    date, or "undated": every citation says how old its source is."""
    title = esc(clip(squash(citation.title).strip() or "Untitled", max_title))
    url = safe_url(citation.url)
    head = f'<a href="{esc(url)}">{title}</a>' if url else f"<i>{title}</i>"
    byline = squash(citation_byline(citation)).strip()
    return f"{head} — {esc(byline)}"


def citation_byline(citation: Citation) -> str:
    """Authors or publisher and the date: "EurAsian Times, 2024"; "undated" without a date."""
    return citation.byline() if citation.date else ", ".join(filter(None, (citation.byline(), "undated")))


# -------------------------------------------------------------------------------------------- passages


def passage_html(text: str, highlight: tuple[int, int] | None, budget: int) -> str:
    """A passage with its best sentence in bold, cut to ``budget`` units around that sentence."""
    if highlight is not None:
        lo, hi = highlight
        lo, hi = max(0, min(lo, len(text))), max(0, min(hi, len(text)))
        if hi <= lo:
            lo = hi = 0
    else:
        lo = hi = 0
    before, sentence, after = tidy(text[:lo]).lstrip(), tidy(text[lo:hi]), tidy(text[hi:]).rstrip()
    if not sentence.strip():
        return esc(clip(tidy(text).strip(), budget))
    # spaces around the bold sentence stay outside the tag
    lead = sentence[: len(sentence) - len(sentence.lstrip())]
    trail = sentence[len(sentence.rstrip()) :]
    sentence = sentence.strip()
    before += lead
    after = trail + after
    budget = max(budget, 1)
    if utf16_len(sentence) >= budget:
        return f"<b>{esc(clip(sentence, budget))}</b>"
    room = budget - utf16_len(sentence)
    # the text before the sentence gets half of the room, or more when the text after is short
    before_room = min(utf16_len(before), max(room - utf16_len(after), room // 2))
    before_part = clip_left(before, before_room) if before else ""
    after_part = clip(after, room - utf16_len(before_part)) if after else ""
    return f"{esc(before_part)}<b>{esc(sentence)}</b>{esc(after_part)}"


def hit_html(hit: Hit, budget: int, *, older: bool = False) -> str:
    """One numbered passage: citation line, then the passage quoted with its best sentence bold.

    ``older``: the question is about the present and a newer source is shown first, so this
    passage is marked "as of <year>"."""
    marker = f" · <b>{esc(as_of_label(hit.date))}</b>" if older else ""
    return (
        f"<b>{hit.rank}.</b> {citation_html(hit.citation)}{marker}\n"
        f"<blockquote>{passage_html(hit.text, hit.highlight, budget)}</blockquote>"
    )


def older_hits(hits: Sequence[Hit], current: bool) -> list[bool]:
    """For a question about the present, which passages come from a source older than the
    newest one shown (to be marked "as of 2017"); all False for other questions."""
    if not current or not hits:
        return [False] * len(hits)
    newest = max(date_value(h.date) for h in hits)
    return [date_value(h.date) < newest for h in hits]


@dataclass(frozen=True)
class Answer:
    """A message ready to send: HTML text and its inline keyboard (or None)."""

    html: str
    keyboard: InlineKeyboardMarkup | None = None


def question_note(question: str, cut: bool, corrected: str | None) -> str:
    lines = []
    if cut:
        lines.append("✂️ <i>Your question was long, so I used only its beginning.</i>")
    if corrected:
        lines.append(f"Showing results for “<i>{esc(clip(squash(corrected).strip(), 300))}</i>”.")
    return "\n".join(lines)


def answer_html(
    result: SearchResult,
    *,
    question: str | None = None,
    page: int = 0,
    per_page: int = 3,
    cut: bool = False,
    limit: int = MAX_MESSAGE,
    passage_limit: int | None = None,
    documents: int | None = None,
) -> str:
    """The text of an answer: a short header, then the passages, all within ``limit``.
    ``documents``: how many documents the index holds (said when the sources don't cover it)."""
    question = squash(question if question is not None else result.query).strip()
    note = question_note(question, cut, result.corrected_query)
    if result.declined_reason == NOT_COVERED and page == 0:
        return not_covered_html(result, note, question=question, limit=limit, passage_limit=passage_limit)
    if result.abstained or not result.hits:
        return fit_html(
            abstain_html(
                question,
                note,
                paged=page > 0 and not result.abstained,
                reason=result.declined_reason,
                documents=documents,
            ),
            limit,
        )
    first = result.hits[0].rank
    last = result.hits[-1].rank
    span = f"{first}–{last}" if last > first else f"{first}"
    total = f" of {result.total}" if result.total >= last else ""
    header = f"🔎 <b>Passages {span}{total}</b> for {asked_html(question)}"
    older = older_hits(result.hits, result.current)
    if any(older):
        note = "\n".join(
            filter(
                None,
                (
                    note,
                    "🕰 <i>You asked about the present: the newest source comes first; "
                    "older ones are marked with their date.</i>",
                ),
            )
        )
    head = header + (f"\n{note}" if note else "")
    return fit_html(head + "\n\n" + passages_html(result.hits, older, limit - html_len(head), passage_limit), limit)


def passages_html(hits: Sequence[Hit], older: Sequence[bool], room: int, passage_limit: int | None) -> str:
    """The numbered passages, sharing ``room`` units left by the header and citations."""
    overhead = sum(html_len(hit_html(h, 0, older=o)) + 2 for h, o in zip(hits, older, strict=True)) + 8
    budget = max(80, (room - overhead) // max(1, len(hits)))
    if passage_limit is not None:
        budget = min(budget, passage_limit)
    return "\n\n".join(hit_html(h, budget, older=o) for h, o in zip(hits, older, strict=True))


def missing_terms_text(terms: Sequence[str]) -> str:
    """ "“population”", "“gdp” or “currency”" — the words no source uses."""
    quoted = [f"“{esc(clip(t, 60))}”" for t in terms[:4]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def asked_html(question: str) -> str:
    """The question an answer is for, quoted: in the passages' header and in a decline alike, so
    that with several questions in flight each answer says which one it is for."""
    return f"“<i>{esc(clip(question, 200))}</i>”"


def not_covered_html(
    result: SearchResult,
    note: str = "",
    *,
    question: str | None = None,
    limit: int = MAX_MESSAGE,
    passage_limit: int | None = None,
) -> str:
    """On topic, but the sources never mention what the question is about: say what is missing,
    then the closest passages, marked as not answering."""
    asked = f" (asked: {asked_html(question)})" if question else ""
    head = (note + "\n" if note else "") + (
        f"🤷 <b>The sources don't mention {missing_terms_text(result.missing_terms)}</b>{asked}."
    )
    if not result.closest:
        return fit_html(head, limit)
    head += "\nThe closest passages, which <b>do not answer</b> your question:"
    older = [False] * len(result.closest)
    return fit_html(head + "\n\n" + passages_html(result.closest, older, limit - html_len(head), passage_limit), limit)


NO_WORDS_REPLY = (
    "🤷 I couldn't find any words to search for in that. Please ask a question in words, "
    "e.g. “<i>" + esc(EXAMPLE_QUESTIONS[1]) + "</i>”."
)


def documents_phrase(documents: int | None) -> str:
    """ "3 documents", "one document"; None (not known): "a small library of documents"."""
    if documents is None:
        return "a small library of documents"
    return "one document" if documents == 1 else f"{documents} documents"


def abstain_html(
    question: str, note: str = "", *, paged: bool = False, reason: str | None = None, documents: int | None = None
) -> str:
    if paged:
        text = "That was the last of the passages for this question."
    elif reason == NO_WORDS:
        text = NO_WORDS_REPLY
    else:
        text = (
            f"🤷 <b>The sources don't cover {asked_html(question) if question else 'that'}.</b>\n"
            f"I can only answer from {documents_phrase(documents)} about Russia–Taliban relations "
            "(/sources lists them). "
            "Try rephrasing, or ask something like “<i>" + esc(EXAMPLE_QUESTIONS[0]) + "</i>”."
        )
    return (note + "\n" if note else "") + text


def build_answer(
    result: SearchResult,
    *,
    question: str,
    token: str | None,
    page: int,
    per_page: int,
    cut: bool = False,
    compact: bool = False,
    votes: Votes | None = None,
    documents: int | None = None,
) -> Answer:
    """The full answer message for one page of a result (``votes``: with a 👍/👎 row)."""
    text = answer_html(
        result,
        question=question,
        page=page,
        per_page=per_page,
        cut=cut,
        passage_limit=COMPACT_PASSAGE if compact else None,
        documents=documents,
    )
    if result.declined_reason == NOT_COVERED and result.closest and page == 0:
        return Answer(text, answer_keyboard(result.closest, token=None, page=0, has_more=False, compact=compact))
    if result.abstained or not result.hits:
        back = answer_keyboard([], token=token, page=page, has_more=False) if page > 0 else None
        return Answer(text, back)
    has_more = result.total > result.hits[-1].rank
    keyboard = answer_keyboard(result.hits, token=token, page=page, has_more=has_more, compact=compact, votes=votes)
    return Answer(text, keyboard)


# ---------------------------------------------------------------------------------------- context


def context_html(context: Context, limit: int = MAX_MESSAGE) -> str:
    """The text around a passage, the passage itself in bold, under its citation."""
    lo, hi = context.passage
    header = f"📖 <b>Context</b> · {citation_html(context.citation)}\n"
    room = max(200, limit - html_len(header) - 4)
    body = passage_html(context.text, (lo, hi), room)
    return fit_html(f"{header}<blockquote>{body}</blockquote>", limit)


# ---------------------------------------------------------------------------------------- commands


def start_html(bot_username: str | None, documents: int | None = None) -> str:
    mention = f"@{bot_username}" if bot_username else "this bot"
    examples = "\n".join(f"• <i>{esc(q)}</i>" for q in EXAMPLE_QUESTIONS)
    library = "a small library of documents" if documents is None else f"a library of {documents_phrase(documents)}"
    return (
        "👋 <b>Hello!</b> I answer questions about <b>Russia–Taliban relations</b> with the most relevant "
        f"passages from {library} (/sources), each with its citation. I quote my sources; "
        "I don't make anything up. The sources are in English: please ask in English.\n\n"
        f"Just send me a question, for example:\n{examples}\n\n"
        f"In groups, use /ask or mention {esc(mention)}. /help tells you more."
    )


def help_html(bot_username: str | None, *, results_private: int, results_group: int) -> str:
    mention = f"@{bot_username}" if bot_username else "@botname"
    return (
        "ℹ️ <b>How to use me</b>\n\n"
        f"<b>Private chat:</b> send any question. I reply with the {results_private} best passages, "
        "the sentence that matches best in bold. <b>More results</b> shows the next passages, "
        "<b>Context</b> shows the text around a passage.\n\n"
        f"<b>Groups:</b> <code>/ask your question</code>, mention {esc(mention)} in a message, or reply to "
        f"one of my messages. I answer with the {results_group} best passages and stay quiet otherwise.\n\n"
        f"<b>Any chat:</b> type {esc(mention)} and a question to pick a passage to share.\n\n"
        "<b>Commands</b>\n"
        "/ask <i>question</i> — ask a question\n"
        "/sources — the documents I quote\n"
        "/about — version and index\n"
        "/help — this message\n\n"
        "Edited messages are ignored: send a corrected question as a new message."
    )


def sources_html(documents: Iterable[DocumentInfo], *, admin: bool = False) -> str:
    """Each document: title (linked when its URL is known), date, author or publisher, passage
    count; for administrators also the file name in the seeds folder."""
    documents = list(documents)
    lines = [f"📚 <b>Sources</b> ({documents_phrase(len(documents))})"]
    for n, doc in enumerate(documents, start=1):
        citation = doc.citation
        title = esc(clip(squash(citation.title).strip() or "Untitled", 200))
        url = safe_url(citation.url)
        head = f'<a href="{esc(url)}">{title}</a>' if url else f"<i>{title}</i>"
        who = ", ".join(citation.authors) if citation.authors else citation.publisher
        if citation.authors and citation.publisher:
            who = f"{who} ({citation.publisher})"
        details = [
            f"date: {esc(citation.date or 'unknown')}",
            f"by: {esc(squash(who).strip() or 'unknown')}",
            f"{doc.passages} passages",
        ]
        if admin:
            details.append(f"file: <code>{esc(doc.doc_id)}</code>")
        lines.append(f"\n{n}. {head}\n   " + " · ".join(details))
    if not documents:
        lines.append("The index holds no documents.")
    return fit_html("\n".join(lines))


def about_html(version: str, manifest: dict, documents: int, passages: int, build_id: str | None = None) -> str:
    built = str(manifest.get("built_at") or "unknown")
    model = str(manifest.get("model") or "unknown")
    return fit_html(
        "🤖 <b>citebot</b> " + esc(version) + "\n"
        "Cited answers about Russia–Taliban relations.\n\n"
        f"<b>Index:</b> {documents_phrase(documents)}, {passages} passages\n"
        f"<b>Build:</b> <code>{esc(build_id or 'unknown')}</code>, built {esc(built)}\n"
        f"<b>Model:</b> {esc(model)}"
    )


USAGE_ASK = "Usage: <code>/ask your question</code>, e.g. <code>/ask " + esc(EXAMPLE_QUESTIONS[0]) + "</code>"
EMPTY_QUESTION = (
    "Please send your question as text, e.g. “<i>" + esc(EXAMPLE_QUESTIONS[1]) + "</i>”. /help explains more."
)
NOT_TEXT = "I can only read text. Send me your question as a message — /help explains how."
RATE_LIMITED = (
    "⏳ You are asking faster than I can answer ({limit} questions a minute). "
    "Please wait about {seconds} seconds — I'll answer new questions then."
)
SOMETHING_WRONG = "⚠️ Sorry, something went wrong on my side. Please try again in a moment."
STALE_BUTTON = "This button has expired. Please ask your question again."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
NO_MORE = "No more passages for this question."
NOT_ALLOWED = (
    "Sorry, this is a private bot: it only answers in the chats its owner has allowed. It won't reply here again."
)
RELOAD_REFUSED = "Sorry, only the bot's administrators can reload the index."
RELOAD_UNAVAILABLE = "This bot was started without an index keeper, so it cannot reload the index."


def reload_html(summary: str, ok: bool, changed: bool = True) -> str:
    """The answer to /reload: the rebuild's one-line summary (``changed`` False: nothing to do)."""
    if not ok:
        head = "⚠️ <b>Reload failed</b>"
    elif changed:
        head = "🔄 <b>Index reloaded</b>"
    else:
        head = "✅ <b>Nothing changed</b>: the index already matches the seeds (/reload force re-embeds all)."
    return fit_html(f"{head}\n{esc(summary)}")


def admin_alert_html(message: str) -> str:
    """What the administrators are sent when the index could not follow the seeds."""
    return fit_html(f"⚠️ <b>citebot: the index could not be updated</b>\n{esc(message)}")


def rate_limited_html(limit: int, seconds: float) -> str:
    return RATE_LIMITED.format(limit=limit, seconds=max(1, round(seconds)))


def slow_down_text(seconds: float) -> str:
    """The answer to a button pressed too often (a callback answer: plain text, at most 200 characters)."""
    return f"Too many presses: try again in {max(1, round(seconds))} s."


# ------------------------------------------------------------------------------------------ inline


@dataclass(frozen=True)
class InlineArticle:
    id: str
    title: str
    description: str
    html: str


def inline_article(hit: Hit) -> InlineArticle:
    """One inline result: title = document, description = start of the passage, message = passage
    with its citation."""
    body = passage_html(hit.text, hit.highlight, 3000)
    message = fit_html(f"<blockquote>{body}</blockquote>\n— {citation_html(hit.citation)}")
    return InlineArticle(
        id=f"{hit.doc_key}:{hit.start}:{hit.end}"[:64],
        title=clip(squash(clean_text(hit.citation.title)).strip() or "Untitled", MAX_INLINE_TITLE),
        description=clip(squash(clean_text(f"{hit.date or 'undated'} · {hit.text}")).strip(), MAX_INLINE_DESCRIPTION),
        html=message,
    )


def inline_help_article(bot_username: str | None) -> InlineArticle:
    mention = f"@{bot_username}" if bot_username else "@botname"
    return InlineArticle(
        id="help",
        title="Ask about Russia–Taliban relations",
        description=f"Type a question after {mention} to find a cited passage",
        html=(
            f"Type {esc(mention)} followed by a question about Russia–Taliban relations to share a cited "
            f"passage, e.g. <i>{esc(mention)} {esc(EXAMPLE_QUESTIONS[1])}</i>"
        ),
    )


def inline_nothing_article(query: str, missing_terms: Sequence[str] = ()) -> InlineArticle:
    """The one inline result of a declined question; with ``missing_terms`` (on topic, not
    covered) it names what the sources never mention."""
    quoted = esc(clip(squash(clean_text(query)).strip(), 300))
    if missing_terms:
        missing = missing_terms_text([clean_text(t) for t in missing_terms])
        return InlineArticle(
            id="none",
            title=clip(f"The sources don't mention {html_to_text(missing)}", MAX_INLINE_TITLE),
            description="On topic, but none of the documents says it",
            html=fit_html(f"🤷 The sources don't mention {missing} (asked: “<i>{quoted}</i>”)."),
        )
    return InlineArticle(
        id="none",
        title="The sources don't cover that",
        description="Try rephrasing your question about Russia–Taliban relations",
        html=fit_html(f"🤷 The sources don't cover “<i>{quoted}</i>”."),
    )


# ----------------------------------------------------------------------------------- questions


def clean_question(text: str, max_chars: int) -> tuple[str, bool]:
    """The question to search for and whether it had to be cut to ``max_chars`` (made safe with
    :func:`clean_text` first: whatever a client sends, the question can be searched and quoted)."""
    text = squash(clean_text(text)).strip()
    if len(text) <= max_chars:
        return text, False
    return clip(text, max_chars).rstrip(ELLIPSIS).rstrip(), True


def has_words(text: str) -> bool:
    """True if ``text`` holds at least one letter or digit (not only emoji or punctuation)."""
    return any(ch.isalnum() for ch in text)


def entity_text(text: str, offset: int, length: int) -> str:
    """The part of ``text`` a message entity covers (``offset``, ``length`` in UTF-16 code units),
    also when ``text`` holds a lone surrogate (which a strict UTF-16 encoding refuses)."""
    units = text.encode("utf-16-le", "surrogatepass")
    return units[2 * offset : 2 * (offset + length)].decode("utf-16-le", "surrogatepass")


def strip_mention(text: str, username: str | None) -> str:
    """The message text without ``@username`` mentions of the bot."""
    if not username:
        return text
    return re.sub(rf"(?<![\w@])@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)


# -------------------------------------------------------------------------------------- languages

# "Ask in English", in the language of the question. The example stays English: it is what to type.
ASK_IN_ENGLISH = {
    "ru": "🌐 Источники, из которых я отвечаю, написаны на английском, и я понимаю только вопросы на "
    "английском. Пожалуйста, задайте вопрос по-английски, например: «{example}»",
    "uk": "🌐 Джерела, з яких я відповідаю, написані англійською, і я розумію лише запитання англійською. "
    "Будь ласка, поставте запитання англійською, наприклад: «{example}»",
    "fa": "🌐 منابعی که از آن‌ها پاسخ می‌دهم به زبان انگلیسی هستند و من فقط پرسش‌های انگلیسی را می‌فهمم. "
    "لطفاً پرسش خود را به انگلیسی بنویسید، مثلاً: «{example}»",
    "ar": "🌐 المصادر التي أجيب منها مكتوبة باللغة الإنجليزية، ولا أفهم إلا الأسئلة بالإنجليزية. "
    "يُرجى كتابة سؤالك بالإنجليزية، مثلًا: «{example}»",
    "fr": "🌐 Mes sources sont en anglais et je ne comprends que les questions en anglais. "
    "Posez votre question en anglais, par exemple : « {example} »",
    "de": "🌐 Meine Quellen sind auf Englisch, und ich verstehe nur Fragen auf Englisch. "
    "Bitte stellen Sie Ihre Frage auf Englisch, zum Beispiel: „{example}“",
    "es": "🌐 Mis fuentes están en inglés y solo entiendo preguntas en inglés. "
    "Por favor, haz tu pregunta en inglés, por ejemplo: «{example}»",
    "it": "🌐 Le mie fonti sono in inglese e capisco solo domande in inglese. "
    "Per favore, fai la tua domanda in inglese, per esempio: «{example}»",
    "pt": "🌐 As minhas fontes estão em inglês e só entendo perguntas em inglês. "
    "Por favor, faça a sua pergunta em inglês, por exemplo: «{example}»",
    "tr": "🌐 Kaynaklarım İngilizce ve yalnızca İngilizce soruları anlıyorum. "
    "Lütfen sorunuzu İngilizce sorun, örneğin: “{example}”",
    "zh": "🌐 我引用的资料都是英文的，我也只能理解英文问题。请用英文提问，例如：“{example}”",
}
LANGUAGE_NAMES = {
    "ja": "Japanese",
    "ko": "Korean",
    "hi": "Hindi",
    "el": "Greek",
    "he": "Hebrew",
    "th": "Thai",
    "ka": "Georgian",
    "hy": "Armenian",
    "bn": "Bengali",
    "ta": "Tamil",
    "ps": "Pashto",
}


def ask_in_english_html(language: str) -> str:
    """The reply to a question in another language: the sources are English, ask in English; in
    the question's language where we have the text, with the same in English below."""
    example = esc(EXAMPLE_QUESTIONS[0])
    name = LANGUAGE_NAMES.get(language, "another language")
    english = (
        f"🌐 Your question seems to be in {name}. The sources I quote are in English and I understand "
        f"questions in English only: please ask in English, e.g. “<i>{example}</i>”."
    )
    local = ASK_IN_ENGLISH.get(language)
    if local is None:
        return english
    return (
        local.format(example=f"<i>{example}</i>") + "\n\n"
        "<i>The sources are in English: please ask your question in English.</i>"
    )


# ------------------------------------------------------------------------------------------ feedback

VOTE_THANKS = {1: "Thanks! 👍 recorded.", -1: "Thanks! 👎 recorded: it helps us improve the sources."}
VOTE_WITHDRAWN = "Your vote was withdrawn."
VOTES_OFF = "Feedback is switched off for this bot."


def vote_answer(mine: int) -> str:
    """The notice after a vote button: thanks, or that the vote was withdrawn."""
    return VOTE_THANKS.get(mine, VOTE_WITHDRAWN)


# ------------------------------------------------------------------------------------------ gaps

GAPS_REFUSED = "Sorry, only the bot's administrators can see the coverage report."
GAPS_OFF = (
    "No questions are stored, so there is no coverage report: set <code>telegram.store_questions: "
    "true</code> (see config/citebot.yaml for what that keeps) to collect them."
)


def gaps_html(report: Any, limit: int = MAX_MESSAGE) -> str:
    """The coverage report for administrators (a ``citebot.gaps.CoverageReport``: ``summary()``
    and ``gaps`` with their counts, note and examples): what the corpus lacks."""
    lines = [f"📈 <b>Coverage</b>: {esc(report.summary())}"]
    for n, gap in enumerate(report.gaps, 1):
        lines += [f"\n<b>{n}.</b> {gap.counts()}" + (f" — <i>{esc(gap.note)}</i>" if gap.note else "")]
        lines += [f"• {esc(clip(squash(q).strip(), 200))}" for q in gap.examples]
    return fit_html("\n".join(lines), limit)


def shown_passages(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The passages of a page of an answer as a vote records them: document, offsets, score and
    the sentence shown in bold."""
    return [
        {
            "doc_id": h.doc_id,
            "start": h.start,
            "end": h.end,
            "score": round(float(h.score), 4),
            "best_sentence": h.text[h.highlight[0] : h.highlight[1]].strip(),
        }
        for h in hits
    ]

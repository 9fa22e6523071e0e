"""The bot's update handlers: small async functions over ``context.bot_data``.

State (settings, retriever, executor, shared state: rate limits and paging) is ``context.bot_data``, a
:class:`bot.state.BotState` that :func:`bot.application.build_application` fills. Retrieval runs
in a thread pool so a slow question never blocks other chats.

Behaviour worth knowing:

* private chats: every text message is a question; other messages get a short hint;
* groups: only ``/ask``, ``/ask@bot``, messages that mention the bot and replies to the bot's
  messages are answered (as replies); everything else is ignored, which works with privacy mode;
* edited messages are ignored (they are neither requested nor handled): ask again instead;
* with ``telegram.allowed_chats`` set, other private chats get one polite refusal (then silence),
  other groups and inline queries silence; administrators (``telegram.admins``) always pass;
* ``/reload`` (administrators only) brings the index up to date with the seeds folder now
  (``/reload force``: re-embed everything) and replies with the rebuild's summary, or that
  nothing changed; ``/gaps`` (administrators only) sends the coverage report;
* answers with passages get 👍/👎 buttons when a store keeps votes (``telegram.store_feedback``);
  questions are kept for ``/gaps`` only with ``telegram.store_questions``;
* replies to one chat go out in the order of its questions (:class:`bot.ordering.ChatOrder`);
* a question in another language gets, in that language, the reply that the sources are in
  English (unless ``embeddings.multilingual``);
* everything that comes from outside (text, callback data, deep-link payloads, inline offsets)
  is treated as untrusted: it is parsed strictly, and anything unusable gets a polite answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from telegram import (
    Chat,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ApplicationHandlerStop

from embeddings.language import ENGLISH, detect_language
from embeddings.search import SearchResult

from . import __version__, keyboards, markup
from . import formatting as fmt
from .ordering import Turn
from .ratelimit import Verdict
from .retriever import answers_batches
from .state import Context, StoredQuery, VotedAnswer

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# the admin whose /reload is running: told the outcome in the reply, so not alerted as well
_RELOADING_ADMIN: ContextVar[int | None] = ContextVar("citebot_reloading_admin", default=None)
T = TypeVar("T")


# ------------------------------------------------------------------------------------------ helpers


async def run_blocking(context: Context, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``func`` in the bot's thread pool (retrieval must never block the event loop)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(context.bot_data.executor, partial(func, *args, **kwargs))


async def search(context: Context, question: str, k: int, offset: int) -> SearchResult:
    """The retriever's answer to ``question``. A retriever that answers batches (``search_many``:
    the Searcher) gets it through the bot's batcher (one thread answering the questions waiting,
    futures resolved once per batch); any other runs ``search`` in the thread pool."""
    state = context.bot_data
    if state.searches is None or not answers_batches(state.retriever):
        return await run_blocking(context, state.retriever.search, question, k, offset)
    return await state.searches.search(question, k, offset)


async def send(
    context: Context,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    keyboard: InlineKeyboardMarkup | None = None,
    thread_id: int | None = None,
) -> Message | None:
    """Send one HTML message (cut to Telegram's limit); a user who blocked the bot is logged
    and skipped. Flood control and network errors are retried by the request layer."""
    reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
    try:
        return await context.bot.send_message(
            chat_id,
            markup.fit_html(text),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard,
            reply_parameters=reply,
            link_preview_options=NO_PREVIEW,
            message_thread_id=thread_id,
        )
    except Forbidden as exc:
        log.info("chat %s cannot be reached (%s): skipped", chat_id, exc.message)
        return None


async def reply(
    update: Update, context: Context, text: str, *, keyboard: InlineKeyboardMarkup | None = None
) -> Message | None:
    """Answer the message of ``update``: quoted in groups, plain in private chats."""
    message = update.effective_message
    if message is None:
        return None
    in_group = message.chat.type != Chat.PRIVATE
    thread = message.message_thread_id if message.is_topic_message else None
    return await send(
        context,
        message.chat_id,
        text,
        reply_to=message.message_id if in_group else None,
        keyboard=keyboard,
        thread_id=thread,
    )


def present(value: T | None, what: str) -> T:
    """``value``, which the handler's registration guarantees (PTB types every part of an Update as
    optional, e.g. ``callback_query`` for a CallbackQueryHandler)."""
    if value is None:
        raise TypeError(f"the update has no {what}, which this handler is registered for")
    return value


def command_argument(message: Message) -> str:
    """The text after the command (``/ask@bot   question`` → ``question``), line breaks kept."""
    text = message.text or ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def addressed_to_bot(message: Message, bot_id: int, username: str | None) -> bool:
    """Whether a group message speaks to the bot: a reply to its message or a mention."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    # not Message.parse_entities: it encodes the text strictly as UTF-16 and raises on a lone
    # surrogate (a client can send "\ud83d" in JSON); entity_text cuts the code units as they are
    for entity in message.entities:
        if entity.type not in (MessageEntity.MENTION, MessageEntity.TEXT_MENTION):
            continue
        text = fmt.entity_text(message.text or "", entity.offset, entity.length)
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            return True
        if entity.type == MessageEntity.MENTION and username and text.lower() == f"@{username.lower()}":
            return True
    return False


# ---------------------------------------------------------------------------------------- gate


async def gate(update: Update, context: Context) -> None:
    """Stop updates from chats outside ``telegram.allowed_chats`` (when that list is set).

    Administrators always pass. A private chat that is not allowed is told so once (then
    silence, so the bot cannot be used to pester anyone); groups and inline queries get silence.
    """
    telegram = context.bot_data.settings.telegram
    allowed = telegram.allowed_chats
    if allowed is None:
        return
    chat = update.effective_chat
    user = update.effective_user
    if user is not None and user.id in telegram.admins:
        return
    if chat is not None:
        if chat.id in allowed:
            return
    elif user is not None and user.id in allowed:  # inline queries have no chat
        return
    private = chat is not None and chat.type == Chat.PRIVATE and update.message is not None
    if private and chat is not None and await context.bot_data.shared.first_refusal(chat.id):
        try:
            await reply(update, context, fmt.NOT_ALLOWED)
        except TelegramError as exc:
            log.info("could not tell chat %s that the bot is private: %r", chat.id, exc)
    raise ApplicationHandlerStop


# ------------------------------------------------------------------------------------- commands


def is_admin(update: Update, context: Context) -> bool:
    user = update.effective_user
    return user is not None and user.id in context.bot_data.settings.telegram.admins


async def document_count(context: Context) -> int:
    return len(await run_blocking(context, context.bot_data.retriever.documents))


async def start(update: Update, context: Context) -> None:
    """/start, also with a deep-link payload (``t.me/bot?start=PAYLOAD`` sends ``/start PAYLOAD``):
    no payload format is defined, so any payload, whatever it holds, gets the normal welcome."""
    await reply(update, context, fmt.start_html(context.bot.username, await document_count(context)))


async def help_command(update: Update, context: Context) -> None:
    telegram = context.bot_data.settings.telegram
    await reply(
        update,
        context,
        fmt.help_html(
            context.bot.username, results_private=telegram.results_private, results_group=telegram.results_group
        ),
    )


async def sources(update: Update, context: Context) -> None:
    """/sources: the documents with date, author or publisher, passages (admins: file names too)."""
    documents = await run_blocking(context, context.bot_data.retriever.documents)
    await reply(update, context, fmt.sources_html(documents, admin=is_admin(update, context)))


async def about(update: Update, context: Context) -> None:
    retriever = context.bot_data.retriever
    documents = await run_blocking(context, retriever.documents)
    passages = sum(d.passages for d in documents)
    await reply(
        update,
        context,
        fmt.about_html(
            __version__, dict(retriever.manifest), len(documents), passages, getattr(retriever, "build_id", None)
        ),
    )


async def ask(update: Update, context: Context) -> None:
    """/ask QUESTION (also /ask@bot QUESTION in groups)."""
    question = command_argument(present(update.effective_message, "message"))
    if not question:
        await reply(update, context, fmt.USAGE_ASK)
        return
    await answer_question(update, context, question)


async def reload_command(update: Update, context: Context) -> None:
    """/reload (administrators only): bring the index up to date with the seeds now and reply
    with the summary; ``/reload force`` re-embeds every document. Questions keep being answered
    from the current index meanwhile."""
    settings = context.bot_data.settings
    user = update.effective_user
    if user is None or user.id not in settings.telegram.admins:
        log.info("/reload refused for user %s", user.id if user else None)
        await reply(update, context, fmt.RELOAD_REFUSED)
        return
    keeper = context.bot_data.keeper
    if keeper is None:
        await reply(update, context, fmt.RELOAD_UNAVAILABLE)
        return
    force = command_argument(present(update.effective_message, "message")).lower() in ("force", "full")
    reloading = _RELOADING_ADMIN.set(user.id)
    try:
        outcome = await keeper.rebuild(force=force)
    finally:
        _RELOADING_ADMIN.reset(reloading)
    log.info("/reload by %s: %s", user.id, outcome.summary())
    await reply(
        update, context, fmt.reload_html(outcome.summary(), outcome.ok, changed=getattr(outcome, "swapped", True))
    )


async def gaps_command(update: Update, context: Context) -> None:
    """/gaps (administrators only): the coverage report of ``citebot gaps``."""
    if not is_admin(update, context):
        await reply(update, context, fmt.GAPS_REFUSED)
        return
    state = context.bot_data
    if state.coverage is None or state.store is None or not state.store.store_questions:
        await reply(update, context, fmt.GAPS_OFF)
        return
    report = await run_blocking(context, state.coverage)
    await reply(update, context, fmt.gaps_html(report))


async def notify_admins(context_or_app: Any, message: str) -> None:
    """Send ``message`` to every user in ``telegram.admins``; failures are logged, never raised."""
    bot_data = context_or_app.bot_data
    bot = context_or_app.bot
    text = fmt.admin_alert_html(message)
    for admin in bot_data.settings.telegram.admins:
        if admin == _RELOADING_ADMIN.get():
            continue
        try:
            await bot.send_message(admin, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW)
        except Exception as exc:  # an admin who never started the bot, a network failure...
            log.warning("could not notify admin %s: %r", admin, exc)


async def unknown_command(update: Update, context: Context) -> None:
    await reply(update, context, fmt.UNKNOWN_COMMAND)


# ------------------------------------------------------------------------------------ questions


async def private_text(update: Update, context: Context) -> None:
    """Any text in a private chat is a question."""
    await answer_question(update, context, present(update.effective_message, "message").text or "")


async def group_text(update: Update, context: Context) -> None:
    """Group text: answered only when it mentions the bot or replies to one of its messages."""
    message = present(update.effective_message, "message")
    if not addressed_to_bot(message, context.bot.id, context.bot.username):
        return
    await answer_question(update, context, fmt.strip_mention(message.text or "", context.bot.username))


async def private_other(update: Update, context: Context) -> None:
    """Stickers, photos, voice... in a private chat: a short hint (groups: silence)."""
    await reply(update, context, fmt.NOT_TEXT)


async def answer_question(update: Update, context: Context, raw: str) -> None:
    """Search for ``raw`` and reply with the first page of passages, after the replies to the
    chat's earlier questions (the turn is taken before the first ``await``)."""
    async with context.bot_data.order.turn(present(update.effective_chat, "chat").id) as turn:
        await _answer(update, context, raw, turn)


def question_rate_key(update: dict[str, Any]) -> int | None:
    """Whose rate limit an update (as JSON) will count against, when that can be told before it is
    handled: a private text message that is not a command is a question of its sender (the webhook
    counts it when it claims the update, in the same Redis step: bot.shared_state). Anything else:
    None, and the handler counts what it answers itself. A guess wrong either way costs nothing
    but a round trip: a count the handler does not ask for is taken back."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat, sender, text = message.get("chat"), message.get("from"), message.get("text")
    if not isinstance(chat, dict) or chat.get("type") != Chat.PRIVATE or not isinstance(text, str):
        return None
    if text.startswith("/"):
        return None
    key = sender.get("id") if isinstance(sender, dict) else chat.get("id")
    return key if isinstance(key, int) and not isinstance(key, bool) else None


async def _answer(update: Update, context: Context, raw: str, turn: Turn) -> None:
    state = context.bot_data
    settings = state.settings
    if not fmt.has_words(raw):
        await turn.ready()
        await reply(update, context, fmt.EMPTY_QUESTION)
        return
    user = update.effective_user
    chat = present(update.effective_chat, "chat")
    decision = await state.shared.check_rate(user.id if user else chat.id, update.update_id)
    if decision.verdict is Verdict.NOTICE:
        await turn.ready()
        await reply(update, context, fmt.rate_limited_html(settings.telegram.rate_limit_per_minute, decision.retry_in))
        return
    if decision.verdict is Verdict.SILENT:
        return
    question, cut = fmt.clean_question(raw, settings.telegram.max_question_chars)
    compact = chat.type != Chat.PRIVATE
    chat_kind = "group" if compact else "private"
    language = ENGLISH if settings.embeddings.multilingual else detect_language(question)
    if language != ENGLISH:  # the model reads English only: searching would find nothing useful
        await _keep_question(context, question, abstained=True, similarity=0.0, chat_kind=chat_kind, language=language)
        await turn.ready()
        await reply(update, context, fmt.ask_in_english_html(language))
        return
    per_page = settings.telegram.results_group if compact else settings.telegram.results_private
    retriever = state.retriever
    result = await search(context, question, per_page, 0)
    await _keep_question(
        context,
        question,
        abstained=result.abstained,
        similarity=result.best_similarity,
        chat_kind=chat_kind,
        language=language,
    )
    token = votes = documents = None
    voting = state.store is not None and state.store.store_feedback
    if not result.abstained and result.hits and (voting or result.total > len(result.hits)):
        token = await state.shared.put_query(
            StoredQuery(question, per_page, cut, compact, votes=voting, chat_id=chat.id)
        )
        if voting:
            state.answers.set(
                token,
                VotedAnswer(question, chat_kind, getattr(retriever, "build_id", ""), fmt.shown_passages(result.hits)),
            )
            votes = keyboards.Votes(token, compact=compact)
    if result.abstained or not result.hits:
        documents = await document_count(context)
    answer = fmt.build_answer(
        result,
        question=question,
        token=token,
        page=0,
        per_page=per_page,
        cut=cut,
        compact=compact,
        votes=votes,
        documents=documents,
    )
    await turn.ready()
    await reply(update, context, answer.html, keyboard=answer.keyboard)


async def _keep_question(context: Context, question: str, **details: Any) -> None:
    """Store the question for /gaps (only with ``telegram.store_questions``); never fails the answer."""
    store = context.bot_data.store
    if store is None or not store.store_questions:
        return
    try:
        await run_blocking(context, store.record_question, question, **details)
    except Exception as exc:  # a full disk must not cost the user the answer
        log.error("could not store a question: %r", exc)


# ------------------------------------------------------------------------------------- buttons


async def button(update: Update, context: Context) -> None:
    """ "More results" and "Context" buttons; stale or forged data gets a polite answer."""
    query = present(update.callback_query, "callback_query")
    decision = context.bot_data.button_limiter.check(query.from_user.id)
    if not decision.allowed:  # refused before any search; the notice once, then the button just stops
        await query.answer(fmt.slow_down_text(decision.retry_in) if decision.verdict is Verdict.NOTICE else None)
        return
    data = keyboards.decode_callback(query.data)
    if isinstance(data, keyboards.MoreData):
        await more_results(update, context, data)
    elif isinstance(data, keyboards.ContextData):
        await show_context(update, context, data)
    elif isinstance(data, keyboards.VoteData):
        await vote(update, context, data)
    else:
        log.info("unusable callback data %r", (query.data or "")[:80])
        await query.answer(fmt.STALE_BUTTON)


async def more_results(update: Update, context: Context, data: keyboards.MoreData) -> None:
    query = present(update.callback_query, "callback_query")
    stored = await context.bot_data.shared.get_query(data.token)
    if (
        stored is None
        or query.message is None
        or (stored.chat_id is not None and stored.chat_id != query.message.chat.id)
    ):
        await query.answer(fmt.STALE_BUTTON)
        return
    result = await search(context, stored.question, stored.per_page, data.page * stored.per_page)
    if not result.hits and not result.abstained and data.page > 0:
        await query.answer(fmt.NO_MORE)
        return
    votes = await _current_votes(update, context, data.token, stored, result.hits)
    answer = fmt.build_answer(
        result,
        question=stored.question,
        token=data.token,
        page=data.page,
        per_page=stored.per_page,
        cut=stored.cut,
        compact=stored.compact,
        votes=votes,
    )
    try:
        await query.edit_message_text(
            markup.fit_html(answer.html),
            parse_mode=ParseMode.HTML,
            reply_markup=answer.keyboard,
            link_preview_options=NO_PREVIEW,
        )
    except BadRequest as exc:
        problem = exc.message.lower()
        if "not modified" in problem:
            pass
        elif "not found" in problem or "can't be edited" in problem:
            # the answer was deleted or is too old to edit: send the page as a new message
            await send(context, query.message.chat.id, answer.html, keyboard=answer.keyboard)
        else:
            raise
    await query.answer()


async def _current_votes(
    update: Update, context: Context, token: str, stored: StoredQuery, hits: list
) -> keyboards.Votes | None:
    """The 👍/👎 row of a page of an answer, with the counts so far; the page's passages become
    what a vote records as shown."""
    state = context.bot_data
    if not stored.votes or state.store is None or not hits:
        return None
    record = state.answers.get(token)
    if record is not None:
        record.shown = fmt.shown_passages(hits)
    user = update.effective_user
    tally = await run_blocking(context, state.store.tally, token, user.id if user else None)
    return keyboards.Votes(token, tally.up, tally.down, tally.mine, compact=stored.compact)


async def vote(update: Update, context: Context, data: keyboards.VoteData) -> None:
    """👍/👎: one vote per user per answer (the other button changes it, the same one withdraws
    it); the buttons then show the new state (groups: the counts)."""
    query = present(update.callback_query, "callback_query")
    state = context.bot_data
    store = state.store
    if store is None or not store.store_feedback:
        await query.answer(fmt.VOTES_OFF)
        return
    record = state.answers.get(data.token) or await run_blocking(context, store.answer, data.token)
    message = query.message
    if record is None or message is None or not isinstance(message, Message):
        await query.answer(fmt.STALE_BUTTON)
        return
    tally = await run_blocking(context, store.vote, data.token, record, query.from_user.id, data.vote)
    votes = keyboards.Votes(data.token, tally.up, tally.down, tally.mine, compact=record.chat_kind != "private")
    try:
        await query.edit_message_reply_markup(keyboards.with_votes(message.reply_markup, votes))
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.info("could not show the vote on message %s: %s", message.message_id, exc.message)
    await query.answer(fmt.vote_answer(tally.mine))


async def show_context(update: Update, context: Context, data: keyboards.ContextData) -> None:
    query = present(update.callback_query, "callback_query")
    settings = context.bot_data.settings
    found = await run_blocking(
        context,
        context.bot_data.retriever.passage_context,
        data.doc_key,
        data.start,
        data.end,
        settings.chunking.context_chars,
    )
    message = query.message
    if found is None or message is None or not isinstance(message, Message):
        await query.answer(fmt.STALE_BUTTON)
        return
    thread = message.message_thread_id if message.is_topic_message else None
    await send(context, message.chat_id, fmt.context_html(found), reply_to=message.message_id, thread_id=thread)
    await query.answer()


# -------------------------------------------------------------------------------------- inline


async def inline_query(update: Update, context: Context) -> None:
    """@bot question: up to ``results_inline`` articles, one per passage; empty query: help."""
    query = present(update.inline_query, "inline_query")
    settings = context.bot_data.settings
    if not context.bot_data.inline_limiter.check(query.from_user.id).allowed:
        return  # a flood of queries: ignored before any search (the client shows nothing)
    cache = settings.telegram.inline_cache_seconds
    # with allowed_chats the answers are for the asking user only: never cached for anyone else
    personal = settings.telegram.allowed_chats is not None
    text = query.query.strip()
    if not fmt.has_words(text):
        articles = [fmt.inline_help_article(context.bot.username)]
        await query.answer(_articles(articles), cache_time=cache, is_personal=personal)
        return
    offset = int(query.offset) if re.fullmatch(r"[0-9]{1,4}", query.offset or "") else 0
    per_page = min(settings.telegram.results_inline, 50)
    question, _ = fmt.clean_question(text, settings.telegram.max_question_chars)
    result = await search(context, question, per_page, offset)
    if result.abstained or not result.hits:
        articles = [fmt.inline_nothing_article(question, result.missing_terms)] if offset == 0 else []
        await query.answer(_articles(articles), cache_time=cache, is_personal=personal)
        return
    articles = [fmt.inline_article(hit) for hit in result.hits]
    next_offset = str(offset + per_page) if result.total > offset + len(result.hits) else ""
    await query.answer(_articles(articles), cache_time=cache, is_personal=personal, next_offset=next_offset)


def _articles(articles: list[fmt.InlineArticle]) -> list[InlineQueryResultArticle]:
    return [
        InlineQueryResultArticle(
            id=a.id,
            title=markup.clean_text(a.title),
            description=markup.clean_text(a.description),
            input_message_content=InputTextMessageContent(
                a.html, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
            ),
        )
        for a in articles
    ]


# --------------------------------------------------------------------------------------- errors


async def on_error(update: object, context: Context) -> None:
    """Log the failure and tell the user something went wrong (never raises)."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("the bot was blocked or removed: %s", error.message)
        return
    if (
        isinstance(error, BadRequest)
        and "query is too old" in error.message.lower()
        and isinstance(update, Update)
        and (update.callback_query is not None or update.inline_query is not None)
    ):
        # a query answered already (a re-delivered update whose first delivery was answered by a
        # replica that died before recording it) or left too long: nothing more can be said to it
        log.info("update %s: its query cannot be answered any more (%s)", update.update_id, error.message)
        return
    log.error("error while handling an update: %r", error, exc_info=error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(fmt.SOMETHING_WRONG, show_alert=False)
        elif update.inline_query is not None:
            return
        elif update.effective_message is not None and update.effective_chat is not None:
            await reply(update, context, fmt.SOMETHING_WRONG)
    except TelegramError as exc:
        log.warning("could not tell the user about the error: %r", exc)

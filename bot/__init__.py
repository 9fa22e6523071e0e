"""citebot's Telegram bot: turns search results into Telegram messages, and updates into questions.

The bot does no retrieval itself: it asks a :class:`bot.retriever.Retriever` that the application
layer (``citebot serve``, :mod:`citebot.serve`) passes in. The modules, each one job:

* :mod:`bot.formatting`: pure message building (HTML, buttons, callback data);
* :mod:`bot.handlers`: the async update handlers;
* :mod:`bot.state`: :class:`~bot.state.BotState` (``bot_data``) and its bounded stores;
* :mod:`bot.retriever`: the Protocols bot/ depends on (Retriever, Keeper);
* :mod:`bot.application`: building the Application; the index following the seeds;
* :mod:`bot.serving`: starting and stopping, long polling or webhook, signals;
* :mod:`bot.polling`: long polling that cannot die or wedge silently, the polling guard;
* :mod:`bot.log_limits`: repeated log lines rate-limited;
* :mod:`bot.transport`: the HTTP request layer (retries, flood control);
* :mod:`bot.redaction`: keeping secrets out of the logs;
* :mod:`bot.ratelimit`: the per-user rate limit;
* :mod:`bot.sandbox`: the bot against the local Bot API emulator, chatting in a terminal.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the version of the distribution bot/ ships in (citebot), shown by /about
    __version__ = version("citebot")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0+unknown"

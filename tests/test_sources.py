"""config/sources.yaml is checked: a file that does not parse, or has the wrong shape, fails the
rebuild (the old index keeps serving, the admins are told) and `citebot index` exits non-zero naming
the file and the line. Tested on the parser, the IndexKeeper (what `citebot serve` runs) and the CLI."""

import asyncio
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from citebot import engine
from citebot.lifecycle import IndexKeeper
from embeddings.index import current_build
from embeddings.sources import SourcesError, load_catalog, parse_catalog

SOURCES = REPO / "config" / "sources.yaml"
VALID = """documents:
  a.txt:
    title: "A report"
    authors: ["A. Author", B. Writer]
    publisher: Some Institute
    date: 2024-03-01      # unquoted: YAML would make it a date object; it stays the text written
    url: https://example.org/a
  b.txt:
    title: 1984
    authors: Single Author
    date: 2017
  c.txt:
  d.txt:
    plain_wording:
      safety pursuits: security interests
      Observe Swimsuit: follow suit
"""


def test_a_valid_file_gives_every_field_as_written():
    catalog = parse_catalog(VALID)
    a = catalog.citation("a.txt", "")
    assert (a.title, a.authors, a.publisher, a.date, a.url) == (
        "A report",
        ("A. Author", "B. Writer"),
        "Some Institute",
        "2024-03-01",
        "https://example.org/a",
    )
    b = catalog.citation("b.txt", "")
    assert (b.title, b.authors, b.date) == ("1984", ("Single Author",), "2017")
    assert catalog.citation("c.txt", "First line\n\nbody.").title == "First line"
    assert parse_catalog("documents: {}\n").entries == {} and parse_catalog("documents:\n").entries == {}
    # a reworded document's phrases in plain English, in the order written; no other document has any
    assert catalog.plain_wording("d.txt") == (
        ("safety pursuits", "security interests"),
        ("Observe Swimsuit", "follow suit"),
    )
    assert catalog.plain_wording("a.txt") == () and catalog.plain_wording("unknown.txt") == ()


def test_the_project_sources_file_is_valid():
    catalog = load_catalog(SOURCES)
    assert catalog.citation("002_d73ef1872804ed67.txt", "").authors == ("Harsh V. Pant", "Aleksei Zakharov")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (VALID + "  broken: [\n", 17, "not valid YAML: the file ends inside a bracket or quote opened on this line"),
        ("documents:\n  a.txt:\n    title: 'unclosed\n", 3, "not valid YAML: .* while scanning a quoted scalar"),
        ("documents:\n  a.txt:\n    title: x\n  b.txt: [\n    c.txt:\n", 5, "not valid YAML"),
        ("documents:\n  a.txt:\n    title: x\n   bad indent: y\n", 4, "not valid YAML"),
        ("documents:\n  a.txt:\n    title: [A, B]\n", 3, "title must be a single value, not a list"),
        ("documents:\n  a.txt:\n    authors: {name: X}\n", 3, "authors must be a list of names"),
        ("documents:\n  a.txt:\n    authors: [[X]]\n", 3, "authors must be a list of names"),
        ("documents:\n  a.txt:\n    titel: A report\n", 3, "unknown field 'titel'"),
        ("documents:\n  a.txt:\n    plain_wording: [a, b]\n", 3, "plain_wording must map phrases .* not a list"),
        ("documents:\n  a.txt:\n    plain_wording:\n      x: y\n      z: [a]\n", 5, "each phrase maps to one"),
        ("documents:\n  a.txt:\n    plain_wording:\n      x: ''\n", 4, "plain English is empty"),
        ("documents:\n  a.txt:\n    date: March 2024\n", 3, "date must be YYYY, YYYY-MM or YYYY-MM-DD"),
        ("documents:\n  a.txt: just a string\n", 2, "must be a mapping"),
        ("documents:\n  a.txt: {}\n  a.txt: {}\n", 3, "listed twice"),
        ("documents: [a.txt]\n", 1, "must map file names"),
        ("document:\n  a.txt: {}\n", 1, "unknown key 'document'"),
        ("- a.txt\n", 1, "expected a mapping"),
    ],
)
def test_a_broken_file_names_the_line_and_what_is_wrong(text, line, says):
    with pytest.raises(SourcesError, match=rf"sources\.yaml, line {line}(, column \d+)?: .*{says}"):
        parse_catalog(text)


def test_an_empty_or_unreadable_file_is_an_error_and_a_missing_one_a_warning(tmp_path, caplog):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.raises(SourcesError, match=r"empty\.yaml: the file is empty"):
        load_catalog(tmp_path / "empty.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"documents:\n  a.txt:\n    title: Caf\xe9\n")
    with pytest.raises(SourcesError, match=r"latin1\.yaml: cannot be read"):
        load_catalog(tmp_path / "latin1.yaml")
    assert load_catalog(tmp_path / "missing.yaml").entries == {}
    assert "not found" in caplog.text


@pytest.fixture
def broken_sources_settings(tmp_path, seeds_copy, make_settings, built_index_dir):
    index_dir = tmp_path / "index"
    shutil.copytree(built_index_dir, index_dir, symlinks=True)
    sources = tmp_path / "config" / "sources.yaml"
    sources.parent.mkdir()
    shutil.copy(SOURCES, sources)
    return make_settings(
        index_dir=index_dir, corpus_seeds_dir=seeds_copy, corpus_sources_file=sources, index_verify_every_seconds=0
    )


def broken_line(path) -> int:
    """Append the issue's broken line; return its line number."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "  broken: [\n", encoding="utf-8")
    return text.count("\n") + 1


@pytest.mark.asyncio
async def test_serving_a_broken_sources_file_is_a_failed_rebuild_and_the_admins_are_told(
    broken_sources_settings, encoder
):
    settings = broken_sources_settings
    errors: list[str] = []
    searcher = engine.make_searcher(settings, encoder, engine.open_index(settings))
    keeper = IndexKeeper(settings, encoder, searcher, on_error=errors.append)
    index_dir = settings.path(settings.index.dir)
    live = current_build(index_dir).resolve()
    sources = settings.path(settings.corpus.sources_file)
    stop = asyncio.Event()
    outcomes = []
    watcher = asyncio.create_task(keeper.watch(stop, outcomes.append))
    try:
        await asyncio.sleep(1.0)  # the watcher is in place
        line = broken_line(sources)
        async with asyncio.timeout(60):
            while not outcomes:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 30)
    outcome = outcomes[0]
    assert not outcome.ok and "SourcesError" in outcome.error
    assert f"{sources}, line {line}: not valid YAML" in outcome.error
    assert errors and errors[0].startswith("rebuild failed, still serving the previous index: ")
    assert str(sources) in errors[0]
    assert keeper.searcher is searcher and current_build(index_dir).resolve() == live
    hit = searcher.search("Understanding Russia's Taliban gauntlet recognition").hits[0]
    assert hit.citation.authors  # the citations are intact

    sources.write_text(SOURCES.read_text(encoding="utf-8"), encoding="utf-8")  # mended: the next rebuild works
    assert (await keeper.rebuild()).ok


def test_citebot_index_exits_non_zero_naming_the_file_and_the_line(broken_sources_settings, child_env):
    settings = broken_sources_settings
    sources = settings.path(settings.corpus.sources_file)
    index_dir = settings.path(settings.index.dir)
    live = current_build(index_dir).resolve()
    line = broken_line(sources)
    env = child_env(
        CITEBOT_INDEX_DIR=str(index_dir),
        CITEBOT_CORPUS_SOURCES_FILE=str(sources),
        CITEBOT_CORPUS_SEEDS_DIR=str(settings.path(settings.corpus.seeds_dir)),
    )
    for args in (["index"], ["index", "--force"], ["index", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "citebot.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 2, (args, done.stderr)
        assert f"citebot: error: {sources}, line {line}: not valid YAML" in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert current_build(index_dir).resolve() == live

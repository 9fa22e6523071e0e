"""bench/profile.py's grouping of py-spy samples into the stages of the path (small inputs)."""

from collections import Counter

from bench.profile import OTHER, breakdown, stage, stage_samples

FORWARD = (
    "thread (1): citebot-search-batch;search_batch (bot/application.py:196);Searcher.search_many "
    "(embeddings/search.py:307);Encoder.encode_with_tokens (embeddings/model.py:100);Linear.forward "
    "(torch/nn/modules/linear.py:134)"
)
MAXSIM = "thread (1): x;Searcher.rank (embeddings/search.py:354);maxsim_in_place (embeddings/fusion.py:63)"
SEND = (
    "thread (2): MainThread;reply (bot/handlers.py:125);send (bot/handlers.py:102);AsyncClient.send "
    "(httpx/_client.py:1629);AnyIOStream.write (httpcore/_backends/anyio.py:50)"
)
PARSE = "thread (2): MainThread;PollingBot.get_updates (bot/polling.py:80);Update.de_json (telegram/_update.py:500)"


def test_a_sample_goes_to_the_innermost_costly_stage_not_the_caller():
    assert stage(FORWARD) == "model forward (torch)"  # not "searcher, other": the searcher called it
    assert stage(MAXSIM) == "MaxSim (token vectors)"  # not the rest of ranking
    assert (
        stage(SEND) == "HTTP client (aiohttp, yarl, multidict; httpx, httpcore, h11, anyio)"
    )  # not the handler that sent
    assert stage(PARSE) == "Bot API objects (de_json, to_dict)"
    assert stage("thread (3): Thread;somewhere (lib/x.py:1)") == OTHER


def test_samples_are_summed_per_stage_and_shared_out_over_the_cpu_per_question():
    lines = [f"{FORWARD} 6", f"{MAXSIM} 2", f"{SEND} 2", "not a sample line", ""]
    counts = stage_samples(lines)
    assert counts == Counter({"model forward (torch)": 6, "MaxSim (token vectors)": 2, stage(SEND): 2})
    rows = breakdown(counts, cpu_ms_per_question=20.0)
    assert rows[0]["stage"] == "model forward (torch)"
    assert [round(r["share"], 2) for r in rows] == [0.6, 0.2, 0.2]
    assert round(sum(r["cpu_ms_per_question"] for r in rows), 6) == 20.0


def test_the_report_shows_each_stage_before_and_after():
    from bench.report import profile_section

    def result(model_share: float, without: list[str]) -> dict:
        stages = breakdown(Counter({"model forward (torch)": round(100 * model_share), "BM25": 10}), 20.0)
        part = {"cpu_ms_per_question": 20.0, "questions_per_second": 30.0, "samples": 110, "stages": stages}
        return {
            "users": 20,
            "batch": 8,
            "seconds": 20,
            "without": without,
            "command": "python -m bench.profile",
            "machine": {"load_average": [1.0, 1.0, 1.0]},
            "bot": part,
            "search": part,
        }

    text = "\n".join(profile_section(result(0.3, []), result(0.5, ["distinct_texts"])))
    assert "**before** (changes undone: distinct_texts)" in text and "**after** (changes undone: none)" in text
    row = next(line for line in text.splitlines() if line.startswith("| model forward (torch) |"))
    assert row.count("|") == 8  # stage, bot share and ms after and before, searcher ms after and before
    assert "| BM25 |" in text

"""Dates and questions about the present: pure functions, tested with small inputs."""

import numpy as np
import pytest

from embeddings.temporal import UNDATED, as_of_label, date_value, is_current_question, passage_time, prefer_newest


def test_dates_sort_by_year_month_and_day_and_undated_is_oldest():
    assert (
        date_value("2017") < date_value("2024") < date_value("2025") < date_value("2025-07") < date_value("2025-07-28")
    )
    assert date_value("") == date_value("unknown") == UNDATED < date_value("1990")


@pytest.mark.parametrize(
    "question",
    [
        "Has Russia recognised the Taliban government?",
        "Has Russia recognised the Taliban yet?",
        "Is the Taliban still banned in Russia?",
        "What is Russia's current policy?",
        "Who is the ambassador now?",
        "Do Afghans speak Russian these days?",
        "Is the embassy open today?",
        "Does Moscow currently arm them?",
        "Is Russia no longer hostile?",
        "Are they at present on the list?",
        "have the taliban been delisted",
        "Does the Kremlin regard the Taliban as an enemy anymore?",
        "How do the Taliban see Russia nowadays?",
        # whether a status holds (recognition, a ban, a listing) is asked about now
        "Did Russia take the Taliban off its terrorist list?",
        "Did Moscow lift the ban on the Taliban?",
        "Is the Taliban banned in Russia?",
        "Are the Taliban on Russia's list of terrorist organisations?",
        "did russia recognize the islamic emirate",
    ],
)
def test_questions_about_the_present(question):
    assert is_current_question(question)


@pytest.mark.parametrize(
    "question",
    [
        "When did the Soviet Union invade Afghanistan?",
        "Who overthrew King Zahir Shah?",
        "Why did Russia start talking to the Taliban?",
        "How has Pakistan helped the Taliban over the years?",
        "Did Russia lose interest in Afghanistan during the 1990s?",
        "What hostile group do they both fight?",
        # "now that" joins clauses; a named time or "ever" anchors a status question in the past
        "Will Russia send troops to Afghanistan now that the US has left?",
        "Was the Taliban banned in Russia in 2003?",
        "Did Russia ever recognise the first Taliban government?",
        "When did Russia recognise the Islamic Emirate?",
        "Did the Russian ambassador see Taliban reprisals against civilians?",
    ],
)
def test_questions_about_the_past_or_timeless_facts(question):
    assert not is_current_question(question)


def test_prefer_newest_moves_the_newest_near_tie_first_and_keeps_the_rest():
    scores = np.array([1.00, 0.95, 0.90, 0.50, 0.94])
    dates = np.array([2017.0, UNDATED, 2025.0, 2025.5, 2024.0])
    order = np.argsort(-scores, kind="stable")  # 0, 1, 4, 2, 3
    assert prefer_newest(order, scores, dates, 0.2).tolist() == [2, 4, 0, 1, 3]  # 3 is too far below
    assert prefer_newest(order, scores, dates, 0.0).tolist() == order.tolist()
    assert prefer_newest(order, scores, dates, 0.07).tolist() == [4, 0, 1, 2, 3]
    same_date = np.full(5, 2020.0)
    assert prefer_newest(order, scores, same_date, 1.0).tolist() == order.tolist()  # relevance order kept
    assert prefer_newest(np.array([], dtype=int), scores, dates, 0.3).tolist() == []


def test_passage_time_is_its_documents_date_unless_it_only_names_history():
    article = date_value("2025-07-28")
    assert passage_time("Russia recognised the IEA; the de-listing came in April 2025.", article) == article
    assert passage_time("No year is named here.", article) == article
    # the latest year named is 2010: the passage tells history, older than a 2024 article's news
    history = passage_time("In 2003 the Taliban were listed. In the early 2010s Moscow made contacts.", article)
    assert date_value("2010") < history < date_value("2011") < date_value("2024")
    # a recent year named (within history_years of the document) keeps the document's date
    assert passage_time("Since the takeover in August 2021 the embassy stayed open.", article, 5) == article
    assert passage_time("Since the takeover in August 2021 the embassy stayed open.", article, 3) < article
    # forecasts do not count; undated stays undated; 0 turns it off
    assert passage_time("In 2003 ... by 2030 the corridor may open.", date_value("2024"), 5) < date_value("2004")
    assert passage_time("In 2003 they were listed.", UNDATED) == UNDATED
    assert passage_time("In 2003 they were listed.", article, 0) == article


def test_as_of_label():
    assert as_of_label("2017") == "as of 2017"
    assert as_of_label("2025-07-28") == "as of 2025"
    assert as_of_label("") == "undated"

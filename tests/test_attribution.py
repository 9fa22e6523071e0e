"""Questions naming a source or asking who wrote it (embeddings/attribution.py): pure functions."""

import numpy as np

from embeddings.attribution import asks_authorship, named_documents, names_its_authors, source_boost
from embeddings.sources import Citation

CITATIONS = [
    Citation("[An issue brief]", date="2017"),
    Citation("Understanding Russia's Taliban gauntlet", ("Harsh V. Pant", "Aleksei Zakharov"), date="2025-07-28"),
    Citation("India, Russia Discuss ...", publisher="EurAsian Times", date="2024"),
    Citation("US withdrawal and Russia-Afghanistan Relations", ("Asma Hussain",)),
]


def test_a_source_is_named_by_its_year_author_or_publisher():
    assert named_documents("What does the 2017 paper recommend?", CITATIONS) == {0}
    assert named_documents("What worries Moscow, per the 2017 report's conclusion?", CITATIONS) == {0}
    assert named_documents("the brief from 2017 on peace talks", CITATIONS) == {0}
    assert named_documents("Where do the authors of the 2025 commentary work?", CITATIONS) == {1}
    assert named_documents("Why, in Asma Hussain's view, does Russia play up the dangers?", CITATIONS) == {3}
    assert named_documents("What did Zakharov write about recognition?", CITATIONS) == {1}
    assert named_documents("What did the EurAsian Times report on trade?", CITATIONS) == {2}


def test_a_year_of_events_names_no_source():
    assert named_documents("was the april 2017 moscow meeting a success", CITATIONS) == frozenset()
    assert named_documents("What happened in 2024?", CITATIONS) == frozenset()
    assert named_documents("Did Russia recognise the Taliban in 2025?", CITATIONS) == frozenset()
    assert named_documents("Why did Russia start talking to the Taliban?", CITATIONS) == frozenset()


def test_naming_every_source_names_none():
    both = [Citation("a", date="2017"), Citation("b", date="2017")]
    assert named_documents("the 2017 paper", both) == frozenset()


def test_a_source_named_by_author_or_publisher_but_not_by_a_year():
    from embeddings.attribution import names_a_source

    assert names_a_source("What did Asma Hussain write?", CITATIONS)
    assert names_a_source("What is the EurAsian Times?", CITATIONS)
    assert names_a_source("does pant argue that", CITATIONS)
    assert not names_a_source("What does the 2017 brief say?", CITATIONS)  # a year: a topic may be 2017's
    assert not names_a_source("What is the capital of France?", CITATIONS)


def test_authorship_questions():
    assert asks_authorship("Who are the authors of the piece on Russia's recognition gamble?")
    assert asks_authorship("who wrote the brief")
    assert not asks_authorship("Who attacked Crocus City Hall?")


def test_a_passage_names_its_own_authors():
    assert names_its_authors("Harsh V. Pant is Vice President, ORF.", CITATIONS[1])
    assert not names_its_authors("Pant said nothing.", CITATIONS[1])  # a surname alone is not a byline
    assert not names_its_authors("Harsh V. Pant is Vice President, ORF.", CITATIONS[0])


def test_source_boost_adds_weights_where_they_apply():
    docs = np.array([0, 1, 1, 3])
    authors = np.array([False, False, True, False])
    assert source_boost(frozenset({1}), False, docs, authors, 0.1, 1.0).tolist() == [0.0, 0.1, 0.1, 0.0]
    assert source_boost(frozenset(), True, docs, authors, 0.1, 1.0).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert source_boost(frozenset({1}), True, docs, authors, 0.0, 0.0).tolist() == [0.0, 0.0, 0.0, 0.0]

"""Question kinds and answer-shaped passages: pure functions, tested with small inputs."""

import numpy as np

from embeddings.cues import (
    KINDS,
    count_asked,
    feature_matrix,
    gives_count,
    has_content,
    kind_boost,
    literal_relations,
    passage_features,
    question_kinds,
)


def test_question_kinds():
    assert question_kinds("Why did Russia start talking to the Taliban?") == {"why"}
    assert question_kinds("What was the purpose of the Soviet intervention?") == {"why"}
    assert question_kinds("When did the last Soviet troops leave?") == {"when"}
    assert question_kinds("In which year did the Taliban take Kabul?") == {"when"}
    assert question_kinds("How many Soviet soldiers died?") == {"how_many"}
    assert question_kinds("Who attacked Crocus City Hall?") == {"who"}
    assert question_kinds("Which Afghan ministry spokesman criticised the talks?") == {"who"}
    assert question_kinds("russia weapons taliban") == frozenset()


def test_passage_features_see_causes_years_numbers_and_names():
    reason = passage_features("Moscow engaged the Taliban because it feared the Islamic State.")
    assert reason["why"] == 2 / 3 and reason["when"] == 0.0  # two of the three cue words that saturate
    dated = passage_features("The Soviet Union invaded Afghanistan on Christmas Eve, 1979.")
    assert dated["when"] > 0 and dated["how_many"] > 0
    counted = passage_features("An estimated 14,500 Soviet soldiers perished.")
    assert counted["how_many"] > 0
    named = passage_features("He met Zamir Kabulov in Moscow.", frozenset())
    assert named["who"] > 0
    topic_only = passage_features("The Russian Federation talks.", frozenset({"russian", "federation"}))
    assert topic_only["who"] == 0.0
    assert passage_features("nothing of the sort here") == {k: 0.0 for k in KINDS}


def test_kind_boost_adds_only_the_asked_kinds_weight():
    features = feature_matrix(["because of fear", "in 1979", "plain text"])
    assert features.shape == (3, len(KINDS))
    boost = kind_boost(frozenset({"why"}), features, {"why": 0.1, "when": 0.5})
    assert boost[0] > 0 and boost[1] == 0 and boost[2] == 0
    assert not kind_boost(frozenset(), features, {"why": 0.1}).any()
    assert not kind_boost(frozenset({"why"}), features, {}).any()
    assert np.allclose(kind_boost(frozenset({"when"}), features, {"when": 0.5}), [0, 0.25, 0])


def test_a_bare_reference_is_not_a_sentence_with_content():
    assert not has_content("(Shahryar, 2016:1).")
    assert not has_content("[12]")
    assert not has_content("Ibid.")
    assert has_content("He asserts that the Taliban is a terrorist group (Shahryar, 2016:1).")


def test_a_count_is_a_number_other_than_a_year():
    assert gives_count("90,000 Mujahideen fighters") and gives_count("three principles")
    assert gives_count("several districts")
    assert not gives_count("the attack on Crocus City Hall in March 2024") and not gives_count("in the 2010s")
    assert count_asked("How many people died in the Crocus City Hall attack?") == "how many people died"
    assert count_asked("how much  business do they do") == "how much business do"
    assert count_asked("Who attacked Crocus City Hall?") == ""


def test_role_asked_names_the_role_whose_holder_is_wanted():
    from embeddings.cues import role_asked

    assert role_asked("Who is the Taliban government's foreign minister?") == "foreign minister"
    assert role_asked("What is the name of the Taliban's charge d'affaires in Moscow?") == "charge d'affaires"
    assert role_asked("Who was Russia's ambassador in Kabul in 2016?") == "ambassador"
    assert role_asked("who is the taliban spokesman") == "taliban spokesman"
    assert role_asked("who is the head of the Islamic Emirate?") == "head of the islamic emirate"
    assert role_asked("Who is the governor of Jowzjan quoted on IS?") == "governor of jowzjan"
    assert role_asked("Who attacked Crocus City Hall?") == ""
    assert role_asked("What did the ambassador say?") == ""  # not a question for a name


def test_names_role_holder_wants_a_name_beside_the_role():
    from embeddings.cues import names_role_holder

    assert names_role_holder("Russia's ambassador to Kabul, Alexander Mantytskiy, said so.", "ambassador")
    assert names_role_holder("The Jowjan governor Reza Ghafouri said that about 100 ISIS members ...", "governor")
    assert names_role_holder("Hibatullah Akhundzada, head of the emirate", "head of the islamic emirate")
    # the role without anyone named, and a name far from any role
    assert not names_role_holder("We have allowed a mission at the level of a charge d'affaires.", "charge d'affaires")
    far = "Fawzia Koofi, an Afghan MP originally from Badakhshan province, said that the minister of a state ..."
    assert not names_role_holder(far, "foreign minister")
    # a capitalised sentence opening with a topic word is no name
    assert not names_role_holder("Now Taliban minister talks began.", "minister", frozenset({"taliban", "now"}))
    # what qualifies the role must be beside it too: a name beside "leaders" is no supreme leader
    assert names_role_holder("President Vladimir Putin was the first world leader to support it.", "world leader")
    assert names_role_holder("Hibatullah Akhundzada, the Taliban's supreme leader, said ...", "supreme leader")
    assert not names_role_holder("Taliban leaders met Zamir Kabulov in Moscow.", "supreme leader")


def test_a_verb_of_conversation_for_a_relation_reads_as_the_relation():
    assert literal_relations("Why did Russia start talking to the Taliban?") == (
        "Why did Russia start dealing with the Taliban?"
    )
    assert literal_relations("Moscow TALKED WITH them; will it talk to Kabul?") == (
        "Moscow dealt with them; will it deal with Kabul?"
    )
    # the noun is a negotiation, and other verbs stay
    assert literal_relations("When were the talks with the Taliban?") == "When were the talks with the Taliban?"
    assert literal_relations("Who stalked to the door?") == "Who stalked to the door?"

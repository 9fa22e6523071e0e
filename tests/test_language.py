"""Language detection (embeddings/language.py): a pure function, checked on small inputs."""

import pytest
import yaml

from embeddings.language import detect_language, script_of
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Почему Россия говорит с талибами?", "ru"),
        ("Признала ли Россия правительство талибов", "ru"),
        ("Чи визнала Росія уряд талібів?", "uk"),
        ("روسیه چرا با طالبان صحبت می‌کند؟", "fa"),
        ("لماذا تتحدث روسيا مع طالبان؟", "ar"),
        ("Pourquoi la Russie parle-t-elle aux talibans ?", "fr"),
        ("Warum spricht Russland mit den Taliban?", "de"),
        ("¿Por qué Rusia habla con los talibanes?", "es"),
        ("俄罗斯为什么与塔利班对话？", "zh"),
        ("Taliban Россия оружие поставки", "ru"),  # mostly Cyrillic letters: Russian
    ],
)
def test_other_languages_are_recognised(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "",
        "???",
        "123 456",
        "talibn opium russia",
        "Is Russia arming the Taliban?",
        "Lashkar-e-Taiba and Sipah-e-Sahaba",
        "Putin",
        "What did Zamir Kabulov say in 2015?",
    ],
)
def test_english_terse_and_undecidable_text_counts_as_english(text):
    assert detect_language(text) == "en"


def test_no_question_of_the_evaluation_set_is_taken_for_another_language():
    data = yaml.safe_load((REPO / "tests" / "data" / "eval.yaml").read_text(encoding="utf-8"))
    questions = [q["q"] for q in data["questions"]] + data["off_topic"]
    assert len(questions) > 100
    assert [q for q in questions if detect_language(q) != "en"] == []


def test_script_of_letters_only():
    assert script_of("ж") == "CYRILLIC" and script_of("a") == "LATIN" and script_of("1") is None

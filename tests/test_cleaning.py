"""Cleaning, on snippets of the real seeds."""

from pathlib import Path

from embeddings.cleaning import (
    clean_document,
    is_double_spaced,
    join_lines,
    normalize_characters,
    remove_boilerplate_lines,
    roman_numeral,
    strip_footnote_markers,
    tidy_punctuation,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_pdf_export_lines_are_rejoined_into_sentences():
    raw = (
        " Abstract \n\n  \nThe relations between Russia and Taliban are strengthening following one and a half "
        "decade \n\nof Western presence in Afghanistan. Commenting on this the Russian Special Envoy for \n\n"
        "Afghanistan and Pakistan Zamir Kabulov said that the establishment of this relation is a \n\n"
        "“common enemy”- (ISIS) to the Russia and Taliban.\n\n" * 1
    )
    raw = raw + "\n\n".join(f"Line {i} of a wrapped paragraph that goes on and on for a while" for i in range(12))
    clean = clean_document(raw)
    assert "decade of Western presence in Afghanistan." in clean.text
    assert "Envoy for Afghanistan and Pakistan" in clean.text
    assert clean.blocks[0].kind == "heading" and clean.text[: clean.blocks[0].end] == "Abstract"


def test_double_spacing_is_detected_only_when_nearly_every_line_has_a_blank_after_it():
    spaced = [f"line {i}" if i % 2 == 0 else "" for i in range(40)]
    assert is_double_spaced(spaced)
    assert not is_double_spaced([f"line {i}" for i in range(40)])


def test_hyphen_at_line_end_keeps_the_compound_word():
    assert (
        join_lines(["There is a claim that ISI (Inter-", "Services Intelligence) had started"])
        == "There is a claim that ISI (Inter-Services Intelligence) had started"
    )
    assert (
        join_lines(["a host of Pakistani groups such as Lashkar-e-", "Jhangvi, Lashkar-e-Taiba"])
        == "a host of Pakistani groups such as Lashkar-e-Jhangvi, Lashkar-e-Taiba"
    )


def test_footnote_markers_glued_to_words_are_removed_in_sequence():
    text = (
        "Moscow supported the fight against the Taliban by aiding its main rival, the Northern Alliance.i\n"
        "President Vladimir Putin was the first world leader to support the war on terror after the 9/11ii. "
        "The interests of Moscow and Washington didn't clash.iii After the overthrow of the Taliban regime in "
        "2001iv, Russia's policy changed, between the Kremlin and the Kremlinv and the US, "
        "including the Talibanvi."
    )
    cleaned = strip_footnote_markers(text)
    assert "Northern Alliance.\n" in cleaned
    assert "after the 9/11. " in cleaned
    assert "didn't clash. " in cleaned
    assert "regime in 2001," in cleaned
    assert "the Kremlin and the Kremlin and" in cleaned
    assert "including the Taliban." in cleaned


def test_words_that_merely_end_like_numerals_survive():
    text = "Alliance.i Then clash.ii And a third.iii The Kremlin in Delhi and Iran met with Putin in Tajikistan."
    cleaned = strip_footnote_markers(text)
    for word in ("Kremlin", "Delhi", "Iran", "Putin", "Tajikistan"):
        assert word in cleaned


def test_text_without_a_footnote_sequence_is_untouched():
    text = "He met Putin in Delhi. Part ii of the report is about Iran."
    assert strip_footnote_markers(text) == text


def test_roman_numerals():
    assert [roman_numeral(n) for n in (1, 4, 9, 14, 40, 44, 49, 58, 60)] == [
        "i",
        "iv",
        "ix",
        "xiv",
        "xl",
        "xliv",
        "xlix",
        "lviii",
        "lx",
    ]


def test_web_page_leftovers_are_removed():
    lines = [
        "The Afghan embassy in Moscow. | Photo Credit: AFP",
        "Table Of Content",
        "Real text stays.",
        "Please enter your comment!",
        "Please enter your name here",
        "No Comment! Be the first one.",
        "India and Russia held bilateral consultations on Afghanistan (via Platform X)",
        "Soviet-Afghan War – Wikipedia",
    ]
    assert [line for line in remove_boilerplate_lines(lines) if line] == ["Real text stays."]


def test_doubled_punctuation_is_mended():
    assert tidy_punctuation("which is ISIS.. Moscow believes") == "which is ISIS. Moscow believes"
    assert tidy_punctuation("seen on 08th April,, 2013, when") == "seen on 08th April, 2013, when"
    assert tidy_punctuation("and so on...") == "and so on..."


def test_control_and_replacement_characters_are_dropped():
    assert normalize_characters("a\tb\u00a0c\x07d\ufffd\r\ne") == "a b cd\ne"


def test_seed_001_table_becomes_one_readable_paragraph_and_markers_are_gone():
    clean = clean_document((SEEDS / "001_1eebfef159720684.txt").read_text(encoding="utf-8"))
    assert "Talibanxviii" not in clean.text and "Alliance.i\n" not in clean.text and "9/11ii" not in clean.text
    assert "teaching them how to make improvised explosive devices." in clean.text
    table = next(
        clean.text[b.start : b.end] for b in clean.blocks if "Darqad district of Takhar" in clean.text[b.start : b.end]
    )
    assert "Khanabad, Chardara and Dashti Archi districts of Kunduz province." in table
    headings = [clean.text[b.start : b.end] for b in clean.blocks if b.kind == "heading"]
    assert "Peace initiatives" in headings and "Russia’s Change of Mind towards Taliban" in headings
    assert not any(h.startswith("During the December 2016") for h in headings)


def test_seed_002_title_is_dropped_and_page_furniture_removed():
    raw = (SEEDS / "002_d73ef1872804ed67.txt").read_text(encoding="utf-8")
    clean = clean_document(raw, title="Understanding Russia’s Taliban gauntlet")
    assert not clean.text.startswith("Understanding")
    for leftover in ("Photo Credit", "Table Of Content", "No Comment!"):
        assert leftover not in clean.text
    assert "Harsh V. Pant is Vice President" in clean.text


def test_block_offsets_point_into_the_text():
    clean = clean_document((SEEDS / "004_52eea514bd0a09a1.txt").read_text(encoding="utf-8"))
    assert "Please enter your" not in clean.text
    for block in clean.blocks:
        piece = clean.text[block.start : block.end]
        assert piece == piece.strip() and piece
    assert clean.text.count("\n\n") == len(clean.blocks) - 1

"""bot/terminal.py: how the sandbox shows a message: styles on a terminal, plain on a pipe,
button numbers that stay put."""

import io

from bot.terminal import QUOTE_BAR, buttons_line, make_console, message_text, number_buttons

MESSAGE = {
    "text": "🔎 Passages 1–2\n1. Title — 2017\nBefore. Best sentence. After.\n2. Other\nx",
    "entities": [
        {"type": "bold", "offset": 0, "length": 15},
        {"type": "text_link", "offset": 19, "length": 5, "url": "https://example.org/a"},
        {"type": "blockquote", "offset": 32, "length": 29},
        {"type": "bold", "offset": 40, "length": 14},
    ],
}


def render(text, terminal: bool) -> str:
    console = make_console(io.StringIO(), terminal=terminal)
    console.print(text)
    return console.file.getvalue()


def test_bold_links_and_quotes_on_a_terminal_and_plain_on_a_pipe():
    text = message_text(MESSAGE)
    assert text.plain.splitlines() == [
        "🔎 Passages 1–2",
        "1. Title (https://example.org/a) — 2017",
        f"{QUOTE_BAR}Before. Best sentence. After.",
        "2. Other",
        "x",
    ]
    styled = render(text, terminal=True)
    assert "\x1b[1mBest sentence.\x1b[0m" in styled  # the best sentence stands out
    assert "\x1b[1m🔎 Passages 1–2\x1b[0m" in styled
    piped = render(text, terminal=False)
    assert "\x1b" not in piped and "Best sentence." in piped


def test_button_numbers_stay_the_same_from_page_to_page():
    def keyboard(first, back):
        contexts = [{"text": f"📖 Context {first + i}", "callback_data": f"c:k:{i}:{i + 1}"} for i in range(3)]
        paging = ([{"text": "◀ Back", "callback_data": "m:tok:0"}] if back else []) + [
            {"text": "More results ▶", "callback_data": "m:tok:2"}
        ]
        votes = [{"text": "👍", "callback_data": "v:t:u"}, {"text": "👎", "callback_data": "v:t:d"}]
        return [contexts, paging, votes]

    page1 = {b.label: b.number for b in number_buttons(keyboard(1, back=False), 3)}
    page2 = {b.label: b.number for b in number_buttons(keyboard(4, back=True), 3)}
    assert page1 == {"📖 Context 1": 1, "📖 Context 2": 2, "📖 Context 3": 3, "More results ▶": 5, "👍": 6, "👎": 7}
    assert page2["More results ▶"] == 5 and page2["◀ Back"] == 4 and page2["📖 Context 4"] == 1
    assert buttons_line(number_buttons(keyboard(1, False), 3)).plain.startswith("Buttons: #1 [📖 Context 1]  #2")

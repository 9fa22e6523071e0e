"""Which language a question is written in, as far as an English-only model needs to know.

A pure function over the text: letters are counted by Unicode script (Cyrillic, Arabic, Han...);
text mostly in Latin letters is told apart by common function words ("le", "der", "el", ...),
which a terse English keyword query ("talibn opium russia") never trips. The answer is an ISO
639-1 code, "en" when the text reads as English or cannot be told (no letters, or too short).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

ENGLISH = "en"

# letters of these scripts (by the first word of their Unicode name) name the language outright,
# or through letters only some of its languages use (below)
_SCRIPTS = {
    "CYRILLIC": "ru",
    "ARABIC": "ar",
    "CJK": "zh",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "DEVANAGARI": "hi",
    "GREEK": "el",
    "HEBREW": "he",
    "THAI": "th",
    "GEORGIAN": "ka",
    "ARMENIAN": "hy",
    "BENGALI": "bn",
    "TAMIL": "ta",
}
_UKRAINIAN = set("іїєґІЇЄҐ")
_PASHTO = set("ټډړږښګڼېۍ")
_PERSIAN = set("پچژگکی")  # Arabic script letters Arabic itself does not use (Pashto shares them)

# Function words: frequent, short, and not English words. A Latin-script text is taken as one
# of these languages when at least two of its words are on that language's list and more of
# them than are on the English list.
_FUNCTION_WORDS = {
    "en": "the a an of to in is are was were do does did what who why how which when where and or with for "
    "on about from by has have had it its this that russia russian",
    "fr": "le la les de des du un une est sont pourquoi comment quel quelle quels qui que avec pour dans sur et "
    "au aux ont été elle il ce cette",
    "de": "der die das den dem des ist sind warum wie welche welcher wer was mit für und nicht ein eine einen "
    "hat haben wurde zu von im auf",
    "es": "el la los las de del un una es son por qué cómo cuál quién con para en y que está han ha sobre al",
    "it": "il lo la gli le di del della un una è sono perché come quale chi con per in e che ha hanno sul",
    "pt": "o a os as de do da dos das um uma é são por que como qual quem com para em e tem foi sobre ao",
    "tr": "ve bir bu ne neden nasıl kim hangi ile için mi mı mu mü da de olan var",
}
# one-letter words ("e", "a", "o", "y") also stand in names ("Lashkar-e-Taiba"): never counted
_WORDS = {lang: {w for w in words.split() if len(w) > 1} for lang, words in _FUNCTION_WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def script_of(char: str) -> str | None:
    """The script of a letter ("LATIN", "CYRILLIC", ...), None for anything that is not a letter."""
    if not char.isalpha():
        return None
    try:
        return unicodedata.name(char).split(" ", 1)[0]
    except ValueError:
        return None


def detect_language(text: str) -> str:
    """The language of ``text`` as an ISO 639-1 code; "en" when it reads as English or cannot be
    told. A language of another script wins when most letters are in it."""
    scripts = Counter(s for s in map(script_of, text) if s is not None)
    letters = sum(scripts.values())
    if not letters:
        return ENGLISH
    script, count = max(
        ((s, n) for s, n in scripts.items() if s != "LATIN"), key=lambda sn: sn[1], default=("LATIN", 0)
    )
    if count * 2 >= letters and script in _SCRIPTS:
        chars = set(text)
        if script == "CYRILLIC" and chars & _UKRAINIAN:
            return "uk"
        if script == "ARABIC":
            return "ps" if chars & _PASHTO else "fa" if chars & _PERSIAN else "ar"
        return _SCRIPTS[script]
    if count * 2 >= letters:
        return "und"  # a script we do not name: still not English
    words = [w.lower() for w in _TOKEN.findall(text)]
    hits = {lang: sum(w in vocabulary for w in words) for lang, vocabulary in _WORDS.items()}
    english = hits.pop(ENGLISH)
    lang, best = max(hits.items(), key=lambda item: item[1])
    return lang if best >= 2 and best > english else ENGLISH

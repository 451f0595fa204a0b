"""The EvalAI / VQA answer normalisation used by TextVQA scoring (eval-spec.md, "Scoring").

Both the prediction and each of the ten ground-truth answers go through ``normalize_answer``; two
answers match when their normalised strings are equal. The steps, in the reference's order:

1. lower-case; delete every "," and "?"; "'s" becomes " 's"; strip;
2. newlines and tabs become spaces; strip;
3. for each punctuation mark of ``PUNCTUATION``: when it touches a space anywhere in the text (as
   it stands before this step) or the text holds a digit,digit comma, delete every occurrence;
   otherwise replace each occurrence by a space;
4. delete periods that are not followed by a digit. Quirks kept on purpose: the reference's
   "not preceded by a digit" guard is written as a look-ahead, ``(?!<=\\d)``, so it never fires
   ("5." loses its period, "v.2" keeps it); and it passes ``re.UNICODE`` (= 32) as ``count``, so
   at most 32 periods are deleted;
5. split on whitespace; map number words to digits ("none" counts as 0, as in the reference);
   drop the articles a / an / the; restore apostrophe contractions ("dont" -> "don't"); join with
   single spaces.

Because step 1 already removed every comma, the digit,digit condition of step 3 can never hold;
it is kept so the function reads as the specification does.

The contraction table is generated from the contracted forms below: each form is reached from
every spelling that lacks exactly one of its apostrophes ("couldn't've" from "couldnt've" and
"couldn'tve", "can't" from "cant"). That reproduces the reference table's reachable entries.
Deliberately absent, as in the reference: "im", "ive", "id've" (the reference spells these keys
with a capital I, which never matches lower-cased text), and the ambiguous "its", "shes", "lets",
"id", "ill", "hell", "shell", "well", "were", "wed", "shed" (real words or possessives). One
reference quirk is kept: "somebody'd" is rewritten to "somebodyd".

Use::

    from bettersynth.eval.normalize import normalize_answer
    normalize_answer("The Two Dogs!")  # -> "2 dogs"
"""

from __future__ import annotations

import re

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
               "`", ",", "?", "!")
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})

# Contracted forms restored by the reference (see the module docstring for the keys they get).
CONTRACTED_FORMS = (
    "ain't", "aren't", "can't", "could've", "couldn't", "couldn't've", "didn't", "doesn't", "don't",
    "hadn't", "hadn't've", "hasn't", "haven't", "he'd", "he'd've", "he's", "how'd", "how'll",
    "how's", "isn't", "it'd", "it'd've", "it'll", "ma'am", "mightn't", "mightn't've", "might've",
    "mustn't", "must've", "needn't", "not've", "o'clock", "oughtn't", "'ow's'at", "shan't",
    "she'd've", "should've", "shouldn't", "shouldn't've", "somebody'd've", "somebody'll",
    "somebody's", "someone'd", "someone'd've", "someone'll", "someone's", "something'd",
    "something'd've", "something'll", "that's", "there'd", "there'd've", "there're", "there's",
    "they'd", "they'd've", "they'll", "they're", "they've", "'twas", "wasn't", "we'd've", "we've",
    "weren't", "what'll", "what're", "what's", "what've", "when's", "where'd", "where's",
    "where've", "who'd", "who'd've", "who'll", "who's", "who've", "why'll", "why're", "why's",
    "won't", "would've", "wouldn't", "wouldn't've", "y'all", "y'all'll", "y'all'd've", "you'd",
    "you'd've", "you'll", "you're", "you've",
)
# The reference maps this correctly spelled form to a misspelling; kept for identical scores.
REFERENCE_QUIRKS = {"somebody'd": "somebodyd"}

COMMA_BETWEEN_DIGITS = re.compile(r"(?<=\d),+(?=\d)")
PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
MAX_PERIOD_DELETIONS = 32  # re.UNICODE passed as count by the reference


def _contraction_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for form in CONTRACTED_FORMS:
        for position, char in enumerate(form):
            if char == "'":
                table[form[:position] + form[position + 1:]] = form
    table.update(REFERENCE_QUIRKS)
    return table


CONTRACTIONS = _contraction_table()


def _punctuation(text: str) -> str:
    has_digit_comma = COMMA_BETWEEN_DIGITS.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if f"{mark} " in text or f" {mark}" in text or has_digit_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=MAX_PERIOD_DELETIONS)


def _words(text: str) -> str:
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [word for word in words if word not in ARTICLES]
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def normalize_answer(answer: str) -> str:
    """The normalised form of one answer string (prediction or ground truth)."""
    text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _words(_punctuation(text))

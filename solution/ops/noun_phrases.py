"""The noun phrases that Data-Juicer's ``phrase_grounding_recall_filter`` grounds, from a given NLTK data folder.

Not an operator. The built-in (``run_ner`` in data_juicer/ops/filter/phrase_grounding_recall_filter.py)
lower-cases a caption, splits it with NLTK's ``word_tokenize`` (Punkt sentences, then NLTK's
Treebank-style word tokenizer), tags it with ``pos_tag`` (the averaged perceptron tagger), chunks the
tags with the grammar ``NP: {<DT>?<JJ.*>*<NN.*>+}``, strips punctuation from each phrase and drops
empty and repeated phrases. ``NounPhrases`` takes the same steps with the same NLTK classes and
parameters, read from one folder in NLTK's data layout, so nothing is looked up on ``nltk.data.path``,
downloaded or unpickled at run time::

    <folder>/tokenizers/punkt_tab/english/{collocations.tab,sent_starters.txt,abbrev_types.txt,ortho_context.tab}
    <folder>/taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.{weights,tagdict,classes}.json

These are NLTK's ``punkt_tab`` and ``averaged_perceptron_tagger_eng`` packages, the files nltk 3.10's
``word_tokenize`` and ``pos_tag`` read. Phrases keep their first-seen order (the built-in's
``list(set(...))`` order changes with Python's hash seed; the recall does not depend on it).

    find = NounPhrases("toolkit/training/model_zoo/recipe_models/nltk_data")
    find("A red circle and two blue squares on a white background")   # a list of phrase strings
"""

from __future__ import annotations

import json
from pathlib import Path

from nltk.chunk import RegexpParser
from nltk.tabdata import PunktDecoder
from nltk.tag.perceptron import PerceptronTagger
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

PUNKT_DIR = Path("tokenizers", "punkt_tab", "english")
TAGGER_DIR = Path("taggers", "averaged_perceptron_tagger_eng")
TAGGER_FILES = {part: f"averaged_perceptron_tagger_eng.{part}.json" for part in ("weights", "tagdict", "classes")}
NP_GRAMMAR = "NP: {<DT>?<JJ.*>*<NN.*>+}"
# the characters the built-in's remove_punctuation deletes from a phrase
PUNCTUATION = "|:;@()[]{}^'\"’`?$%#!&*+,."


def punkt_parameters(folder: Path) -> PunktParameters:
    """NLTK's Punkt parameters from a ``punkt_tab/<language>`` folder (as nltk's load_punkt_params reads them)."""
    decoder, params = PunktDecoder(), PunktParameters()
    with open(folder / "collocations.tab", encoding="utf-8") as lines:
        params.collocations = set(decoder.tab2tups(lines))
    with open(folder / "sent_starters.txt", encoding="utf-8") as lines:
        params.sent_starters = decoder.txt2set(lines)
    with open(folder / "abbrev_types.txt", encoding="utf-8") as lines:
        params.abbrev_types = decoder.txt2set(lines)
    with open(folder / "ortho_context.tab", encoding="utf-8") as lines:
        params.ortho_context = decoder.tab2intdict(lines)
    return params


def perceptron_tagger(folder: Path) -> PerceptronTagger:
    """NLTK's averaged perceptron tagger from its three JSON files."""
    tagger = PerceptronTagger(load=False)
    parts = []
    for part in ("weights", "tagdict", "classes"):
        with open(folder / TAGGER_FILES[part], encoding="utf-8") as file:
            parts.append(json.load(file))
    tagger.decode_json_params(parts)
    return tagger


class NounPhrases:
    """caption -> its distinct noun phrases, as the built-in grounding filter finds them."""

    def __init__(self, nltk_data: str | Path):
        self.folder = folder = Path(nltk_data)
        missing = [str(path) for path in (folder / PUNKT_DIR, folder / TAGGER_DIR) if not path.is_dir()]
        if missing:
            raise FileNotFoundError(f"NLTK data folder {folder} lacks {missing} (NLTK's punkt_tab and "
                                    f"averaged_perceptron_tagger_eng packages)")
        self.sentences = PunktSentenceTokenizer(punkt_parameters(folder / PUNKT_DIR))
        self.words = NLTKWordTokenizer()
        self.tagger = perceptron_tagger(folder / TAGGER_DIR)
        self.chunker = RegexpParser(NP_GRAMMAR)
        self.unpunctuate = str.maketrans("", "", PUNCTUATION)

    def __reduce__(self):
        # Rebuilt from the folder when pickled (Data-Juicer sends operators to worker processes):
        # an unpickled NLTK chunker fails, its regex time limit's "unset" sentinel being a copy.
        return NounPhrases, (self.folder,)

    def tokens(self, text: str) -> list[str]:
        """nltk.word_tokenize(text): each Punkt sentence split into words."""
        return [token for sentence in self.sentences.tokenize(text) for token in self.words.tokenize(sentence)]

    def __call__(self, caption: str) -> list[str]:
        tokens = self.tokens(caption.lower())
        if not tokens:  # (NLTK's chunker prints a warning for empty input and finds nothing)
            return []
        tagged = self.tagger.tag(tokens)
        phrases = [" ".join(word for word, _ in subtree.leaves())
                   for subtree in self.chunker.parse(tagged).subtrees() if subtree.label() == "NP"]
        cleaned = (phrase.translate(self.unpunctuate).strip() for phrase in phrases)
        return list(dict.fromkeys(phrase for phrase in cleaned if phrase))

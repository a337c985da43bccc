"""German text preprocessing for the topic models: one deterministic function for training and
inference.

``preprocess(text, lexicon)`` turns a (redacted) contribution into a space-separated string of
features the ONNX text models read:

1. HTML tags and entities are removed, Unicode is normalised (NFC), text is lowercased;
2. tokens are Unicode letter/digit runs (umlauts and ß stay inside words; hyphens split
   ``Max-Brauer-Allee`` into its parts), at least two characters long;
3. German stopwords (package ``stop-words``) and redaction placeholders are dropped;
4. compound words are split into known sub-words (Koehn & Knight 2003: the split whose parts
   have the highest geometric mean of corpus frequencies, with the linking morphemes -s-, -es-,
   -n-, -en-, -e-) from a :class:`Lexicon` learned from the training corpus, so
   ``Radwegbenutzungspflicht`` yields ``radwegbenutzungspflicht radweg rad weg benutzung
   pflicht`` (stemmed): rare compounds share features with their frequent parts;
5. every token is stemmed with the Snowball German stemmer (package ``snowballstemmer``; fast
   through ``PyStemmer`` when installed).
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

_TAG = re.compile(r"<[^>]{0,400}>")
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z-]*\]")
#: Letter/digit runs: Python's ``\w`` is Unicode-aware; ``_`` is excluded so it separates.
_TOKEN = re.compile(r"[^\W_]{2,}")
_LINKS = ("es", "en", "s", "n", "e", "")
MIN_PART = 3
MIN_COMPOUND = 7
MAX_COMPOUND = 40


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """German stopwords of the ``stop-words`` package plus planning-forum filler words."""
    from stop_words import get_stop_words

    extra = {"bitte", "gibt", "sollte", "sollten", "mehr", "schon", "immer", "ganz", "sowie",
             "wäre", "wären", "gerne", "gern", "eigentlich", "einfach", "wirklich", "dass",
             "daß", "usw", "bzw", "ca", "z", "b"}
    # Words of the planning domain that general stopword lists drop ("weg": path, "platz").
    keep = {"weg", "wege", "platz", "seite", "ende", "recht", "rechts", "links", "neu"}
    return (frozenset(get_stop_words("de")) | frozenset(extra)) - frozenset(keep)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("german")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball German stem of a lowercase word."""
    return _stemmer().stemWord(word)


def clean(text: str | None) -> str:
    """Text without HTML markup and entities, NFC-normalised, whitespace collapsed."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(unicodedata.normalize("NFC", text).split())


def words(text: str | None) -> list[str]:
    """Lowercase word tokens of a text without stopwords and placeholders (not stemmed)."""
    text = _PLACEHOLDER.sub(" ", clean(text)).lower()
    stop = stopwords()
    return [t for t in _TOKEN.findall(text) if t not in stop]


@dataclass
class Lexicon:
    """Corpus word frequencies from which compounds are split (shipped in the model card)."""

    frequencies: dict[str, int] = field(default_factory=dict)
    _cache: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def learn(cls, texts: Iterable[str | None], min_count: int = 2,
              max_words: int = 6000) -> Lexicon:
        """The words occurring at least ``min_count`` times (at most ``max_words``)."""
        counts = Counter(w for text in texts for w in words(text)
                         if len(w) >= MIN_PART and not w.isdigit())
        frequent = [(w, c) for w, c in counts.items() if c >= min_count]
        frequent.sort(key=lambda item: (-item[1], item[0]))
        return cls(dict(frequent[:max_words]))

    def to_json(self) -> dict[str, int]:
        return dict(sorted(self.frequencies.items()))

    @classmethod
    def from_json(cls, value: dict[str, int] | None) -> Lexicon:
        return cls({str(k): int(v) for k, v in (value or {}).items()})

    def split(self, word: str) -> tuple[str, ...]:
        """The known parts of a compound (empty when it is not split), recursively."""
        if len(word) < MIN_COMPOUND or not self.frequencies:
            return ()
        cached = self._cache.get(word)
        if cached is None:
            cached = self._split(word)
            self._cache[word] = cached
        return cached

    def _split(self, word: str, depth: int = 0) -> tuple[str, ...]:
        """Koehn & Knight: the segmentation into known parts (linking morphemes allowed
        between them) with the highest geometric mean of part frequencies, if it beats the
        word's own frequency; returned as the parts plus known joins of adjacent parts."""
        if len(word) > MAX_COMPOUND:
            return ()
        freq = self.frequencies
        memo: dict[int, tuple[float, tuple[str, ...]] | None] = {}

        def best(start: int) -> tuple[float, tuple[str, ...]] | None:
            # (sum of log frequencies, parts) of word[start:], maximal mean
            if start in memo:
                return memo[start]
            found: tuple[float, tuple[str, ...]] | None = None
            for end in range(start + MIN_PART, len(word) + 1):
                part = word[start:end]
                if part not in freq:
                    continue
                score = math.log(freq[part] + 1)
                if end == len(word):
                    candidates = [(score, (part,))]
                else:
                    candidates = []
                    for link in _LINKS:
                        if link and not word.startswith(link, end):
                            continue
                        rest = best(end + len(link))
                        if rest is not None and len(rest[1]) < 4:
                            candidates.append((score + rest[0], (part, *rest[1])))
                for total, parts in candidates:
                    if found is None or total / len(parts) > found[0] / len(found[1]):
                        found = (total, parts)
            memo[start] = found
            return found

        result = best(0)
        if result is None or len(result[1]) < 2:
            return ()
        total, parts = result
        if word in freq and math.log(freq[word] + 1) >= total / len(parts):
            return ()
        joins = [
            "".join(parts[i:j])
            for i in range(len(parts)) for j in range(i + 2, len(parts) + 1)
            if (i, j) != (0, len(parts)) and "".join(parts[i:j]) in freq
        ]
        return tuple(dict.fromkeys((*parts, *joins)))


def preprocess(text: str | None, lexicon: Lexicon | None = None) -> str:
    """The model input of one text: stemmed tokens and compound parts, space-separated.

    Deterministic; the same function runs in training, evaluation and the process.
    """
    out: list[str] = []
    for word in words(text):
        out.append(stem(word))
        if lexicon is not None:
            out.extend(stem(part) for part in lexicon.split(word))
    return " ".join(out)


def looks_german(text: str | None, min_words: int = 8) -> bool:
    """False when a text of at least ``min_words`` words has (almost) no German function
    words (under 5 %): probably another language. Short texts count as German."""
    tokens = _TOKEN.findall(_PLACEHOLDER.sub(" ", clean(text)).lower())
    if len(tokens) < min_words:
        return True
    stop = stopwords()
    return sum(t in stop for t in tokens) / len(tokens) >= 0.05


def contribution_text(title: str | None, text: str | None) -> str:
    """Title and text of a contribution as one document (the title counts once)."""
    return " . ".join(part for part in (title, text) if part)

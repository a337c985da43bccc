"""Redaction of personal data in citizen contributions, before anything else reads them.

Replaced by placeholders (in this order, so an e-mail address is not also read as a URL):

* ``[E-MAIL]`` e-mail addresses;
* ``[URL]`` web addresses with a path (``https://facebook.com/anna.schmidt``,
  ``www.example.org/~mueller``); a bare domain (``www.hamburg.de``) stays;
* ``[IBAN]`` IBANs (``DE89 3704 0044 0532 0130 00``, with or without spaces);
* ``[TELEFON]`` phone numbers starting with ``+``, ``00`` or ``0`` and holding 7 to 15 digits
  (``040 66969 123``, ``+49 (0)40 123456``, ``0176-1234567``); postcodes, years, dates and
  speeds do not start that way or are too short;
* ``[NAME]`` personal names after a salutation or title (``Frau``, ``Herr``/``Herrn``,
  ``Hr.``, ``Fr.``, ``Dr.``, ``Prof.``, ``Familie``) or after a closing greeting
  (``Viele Grüße``, ``Mit freundlichen Grüßen``): the salutation stays, the name goes
  (``Frau [NAME]``). Street names such as ``Max-Brauer-Allee`` or ``Dr.-Karl-Renner-Platz``
  are left alone: a name is only taken after whitespace following the salutation.

:func:`redact` returns the redacted text and the counts per kind; the texts are never logged.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

KINDS = ("email", "url", "iban", "phone", "name")
PLACEHOLDERS = {
    "email": "[E-MAIL]",
    "url": "[URL]",
    "iban": "[IBAN]",
    "phone": "[TELEFON]",
    "name": "[NAME]",
}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s/<>\"']+(/[^\s<>\"']*)?", re.IGNORECASE
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00|0)(?:[ \t]?[(/-]?[ \t]?\d[)\-/]?){6,18}(?!\w)")
# Capitalised name word (with umlauts, hyphens, apostrophes), optionally preceded by particles.
_NAME_WORD = r"[A-ZÄÖÜ][a-zäöüßéèáàç'’]+(?:-[A-ZÄÖÜ][a-zäöüßéèáàç'’]+)?"
_PARTICLES = r"(?:(?:von|van|de|der|den|zu|vom|zur|ter|di|da|el)\s+){0,2}"
_TITLE = r"(?:(?:Dr|Prof|Dipl|Ing|med|rer|nat|phil)\.\s*)"
_SALUTATION = re.compile(
    r"(?P<lead>\b(?:Frau|Herrn?|Hr\.|Fr\.|Familie|Dr\.|Prof\.)[ \t]+" + _TITLE + "*)"
    r"(?P<name>" + _PARTICLES + _NAME_WORD + r"(?:[ \t]+" + _NAME_WORD + r"(?=[ \t]*(?:[,.;:!?)]|$|"
    r"\n|[ \t]+[a-zäöü])))?)"
)
_GREETING = re.compile(
    r"(?P<lead>(?:(?:Viele|Beste|Liebe|Freundliche|Herzliche)\s+Grüße|Mit\s+freundlichen\s+"
    r"Grüßen|Gruß|MfG|LG|VG)\s*,?\s*\n?\s*)"
    r"(?P<name>" + _NAME_WORD + r"(?:[ \t]+" + _NAME_WORD + r")?)(?=\s*$|\s*\n|[ \t]*[.,!])"
)
# Words that follow a salutation but are not names ("Frau Senatorin", "Herr Bürgermeister").
_NOT_NAMES = {
    "Senatorin", "Senator", "Bürgermeister", "Bürgermeisterin", "Bezirksamtsleiter",
    "Bezirksamtsleiterin", "Minister", "Ministerin", "Präsident", "Präsidentin", "Doktor",
    "Professor", "Professorin", "Kollegin", "Kollege", "Nachbarin", "Nachbar",
}


@dataclass(frozen=True)
class Redacted:
    """A redacted text and how many items of each kind were replaced."""

    text: str
    counts: dict[str, int]


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def redact(text: str | None) -> Redacted:
    """Replace personal data in ``text`` by placeholders (see the module docstring)."""
    counts: Counter[str] = Counter()
    if not text:
        return Redacted(text or "", {k: 0 for k in KINDS})

    def email(match: re.Match) -> str:
        counts["email"] += 1
        return PLACEHOLDERS["email"]

    def url(match: re.Match) -> str:
        path = match.group(1)
        if not path or path in ("/",) or not re.search(r"[\w~]", path):
            return match.group(0)
        counts["url"] += 1
        return PLACEHOLDERS["url"]

    def iban(match: re.Match) -> str:
        compact = match.group(0).replace(" ", "")
        if not 15 <= len(compact) <= 34 or _digits(compact) < 10:
            return match.group(0)
        counts["iban"] += 1
        return PLACEHOLDERS["iban"]

    def phone(match: re.Match) -> str:
        value = match.group(0)
        if not 7 <= _digits(value) <= 15:
            return value
        counts["phone"] += 1
        trailing = value[len(value.rstrip(" \t-/")):]
        return PLACEHOLDERS["phone"] + trailing

    def name(match: re.Match) -> str:
        first = match.group("name").split()[0]
        if first in _NOT_NAMES:
            return match.group(0)
        counts["name"] += 1
        return match.group("lead") + PLACEHOLDERS["name"]

    text = _EMAIL.sub(email, text)
    text = _URL.sub(url, text)
    text = _IBAN.sub(iban, text)
    text = _PHONE.sub(phone, text)
    text = _SALUTATION.sub(name, text)
    text = _GREETING.sub(name, text)
    return Redacted(text, {k: counts.get(k, 0) for k in KINDS})

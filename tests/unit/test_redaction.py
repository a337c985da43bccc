"""Redaction of personal data in German contributions: each kind, and no false redactions."""

from __future__ import annotations

import pytest

from cut_processes.analysis.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected", "kind", "count"),
    [
        ("Schreiben Sie mir an anna.schmidt@example.org, danke.",
         "Schreiben Sie mir an [E-MAIL], danke.", "email", 1),
        ("Mail: m.mueller+dipas@mail.example.de", "Mail: [E-MAIL]", "email", 1),
        ("Rufen Sie an: 040 66969 123.", "Rufen Sie an: [TELEFON].", "phone", 1),
        ("Tel. +49 (0)40 1234567 oder 0176-1234567",
         "Tel. [TELEFON] oder [TELEFON]", "phone", 2),
        ("Mehr unter https://www.facebook.com/anna.schmidt.77 lesen",
         "Mehr unter [URL] lesen", "url", 1),
        ("Spenden an DE89 3704 0044 0532 0130 00 bitte",
         "Spenden an [IBAN] bitte", "iban", 1),
        ("IBAN DE89370400440532013000.", "IBAN [IBAN].", "iban", 1),
        ("Frau Müller aus der Nachbarschaft meint das auch.",
         "Frau [NAME] aus der Nachbarschaft meint das auch.", "name", 1),
        ("Das hat Herr Beispielmann gesagt.", "Das hat Herr [NAME] gesagt.", "name", 1),
        ("Ich habe Herrn Özdemir gefragt.", "Ich habe Herrn [NAME] gefragt.", "name", 1),
        ("Laut Dr. Meier und Prof. Dr. Anna Schulz ist das so.",
         "Laut Dr. [NAME] und Prof. Dr. [NAME] ist das so.", "name", 2),
        ("Die Bezirksamtsleiterin Frau von Berg will das.",
         "Die Bezirksamtsleiterin Frau [NAME] will das.", "name", 1),
        ("Das war's.\nViele Grüße\nHans Peter", "Das war's.\nViele Grüße\n[NAME]", "name", 1),
    ],
)
def test_each_kind_is_replaced_and_counted(text, expected, kind, count):
    result = redact(text)
    assert result.text == expected
    assert result.counts[kind] == count
    assert sum(result.counts.values()) == count


@pytest.mark.parametrize(
    "text",
    [
        "Tempo 30 in der Max-Brauer-Allee ab 2023!",
        "Am Dr.-Karl-Renner-Platz und am Frau-Holle-Weg fehlen Bänke.",
        "PLZ 22765 Hamburg, am 12.05.2021 um 14:30 Uhr, 50 km/h, 3,5 t.",
        "Die Herrenstraße und die Frauenthal-Kita brauchen Radbügel.",
        "Siehe www.hamburg.de und https://www.hamburg.de/ für Infos.",
        "Sehr geehrte Frau Senatorin, die Ampel ist zu kurz grün.",
        "Buslinie 15 fährt alle 10 Minuten, Linie 283 seltener.",
    ],
)
def test_no_false_redaction(text):
    result = redact(text)
    assert result.text == text
    assert sum(result.counts.values()) == 0


def test_empty_and_none():
    assert redact("").text == ""
    assert redact(None).text == ""
    assert set(redact(None).counts) == {"email", "url", "iban", "phone", "name"}


def test_email_is_not_also_counted_as_url():
    result = redact("Kontakt: https://example.org/kontakt oder info@example.org")
    assert result.counts["url"] == 1 and result.counts["email"] == 1
    assert "example.org" not in result.text

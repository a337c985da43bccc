"""Generated citizen contributions (Bürgerbeiträge) for the demo district.

About 300 contributions to an invented online participation ("Mobilität und Freiraum im
Quartier", spring 2024) in the normalised contributions schema of
:mod:`cut_processes.io.dipas`. They are written in German planning language, name the
district's invented streets, and are about traffic, parking, green spaces, cycling,
playgrounds, noise, public transport and walking; many touch two topics. About two thirds
are located (a point near the street they name), the rest have no geometry.

The topics of each contribution are **hidden truth**: the served layer ``contributions`` has
``topics`` null, the table ``contributions_truth`` (not served) lists them, together with the
kinds of personal data a few contributions contain on purpose so that redaction can be
tested: a fictitious e-mail address (``@example.org``), a phone number from the Hamburg range
set aside for fiction (``040 66969 ...``) or a name (``Frau Müller``). All of it is invented.
Everything is drawn from the given ``numpy`` generator, so a seed gives the same texts.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fiona
import numpy as np
from shapely.geometry import Point, mapping

from cut_processes.demo.constants import BBOX, CRS, EDGE_MARGIN
from cut_processes.demo.streets import Street

N_CONTRIBUTIONS = 300
PROJECT = "Mobilität und Freiraum im Quartier (generiert)"
PERIOD_START = datetime(2024, 4, 22, 8, 0, tzinfo=UTC)
PERIOD_DAYS = 42

TOPICS = (
    "traffic",
    "parking",
    "green_space",
    "cycling",
    "playground",
    "noise",
    "public_transport",
    "walking",
)
#: DIPAS-like categories; a contribution's category follows its first topic (mostly).
CATEGORIES = {
    "traffic": "Verkehr",
    "parking": "Verkehr",
    "green_space": "Grün und Freiraum",
    "cycling": "Verkehr",
    "playground": "Spielen und Freizeit",
    "noise": "Umwelt",
    "public_transport": "Verkehr",
    "walking": "Verkehr",
}
RUBRICS = ("Hinweis", "Idee", "Kritik", "Frage", "Lob")
RUBRIC_WEIGHTS = (0.32, 0.3, 0.22, 0.1, 0.06)

# Sentences per topic: {s} is a street of the district, {s2} another one; {in_s}, {an_s},
# {zur_s}, {Die_s}, {die_s} and {auf_s2} are the phrases with the right article (see _phrases).
TITLES = {
    "traffic": [
        "Tempo 30 {in_s}",
        "Raser {in_s} ausbremsen",
        "Durchgangsverkehr {in_s} verringern",
        "Gefährliche Kreuzung {s}/{s2}",
        "Verkehrsberuhigung {s}",
    ],
    "parking": [
        "Falschparker {in_s}",
        "Zu wenig Anwohnerparkplätze",
        "Lieferzone statt Parkstreifen {in_s}",
        "Gehwegparken beenden",
        "Parkraumbewirtschaftung im Quartier",
    ],
    "green_space": [
        "Mehr Straßenbäume {in_s}",
        "Grünfläche {an_s} aufwerten",
        "Pocket-Park statt Parkplätzen",
        "Blühwiese statt Rasen",
        "Schattenplätze für heiße Sommertage",
    ],
    "cycling": [
        "Geschützter Radfahrstreifen {in_s}",
        "Fahrradbügel {an_s}",
        "Radweg endet im Nichts",
        "Fahrradstraße {s}",
        "Lastenradstellplätze fehlen",
    ],
    "playground": [
        "Spielplatz {an_s} erneuern",
        "Wasserspielplatz für das Quartier",
        "Spielstraße {in_s}",
        "Sichere Schulwege und Spielflächen",
        "Klettergerüst defekt",
    ],
    "noise": [
        "Lärm {in_s} nachts",
        "Lärmschutz {an_s}",
        "Kopfsteinpflaster macht Lärm",
        "Lieferverkehr frühmorgens",
        "Flüsterasphalt für {die_s}",
    ],
    "public_transport": [
        "Bushaltestelle {s} barrierefrei ausbauen",
        "Taktverdichtung der Buslinie",
        "Überdachte Haltestelle {an_s}",
        "Quartiersbus am Wochenende",
        "Busspur {in_s}",
    ],
    "walking": [
        "Zebrastreifen {an_s}",
        "Gehweg {in_s} zu schmal",
        "Bordsteine absenken",
        "Beleuchtung des Fußwegs {zur_s}",
        "Ampelphase für Fußgänger zu kurz",
    ],
}
SENTENCES = {
    "traffic": [
        "{In_s} wird regelmäßig viel zu schnell gefahren, besonders abends.",
        "Die Autos nutzen {die_s} als Abkürzung, um den Stau {auf_s2} zu umgehen.",
        "An der Einmündung {s}/{s2} ist die Sicht durch parkende Transporter versperrt.",
        "Eine Tempo-30-Zone mit Aufpflasterungen würde hier viel bringen.",
        "Diagonalsperren könnten den Schleichverkehr wirksam unterbinden.",
        "Morgens stauen sich die Elterntaxis vor der Schule bis auf die Kreuzung.",
    ],
    "parking": [
        "Die Kreuzungsbereiche sind ständig zugeparkt, Kinderwagen kommen nicht durch.",
        "Abends findet man als Anwohnerin keinen Parkplatz mehr, weil Pendler alles belegen.",
        "{In_s} parken Lieferwagen in zweiter Reihe und blockieren den Busverkehr.",
        "Anwohnerparken mit Parkausweis wäre eine faire Lösung.",
        "Auf dem Gehweg abgestellte Autos zwingen Fußgänger auf die Fahrbahn.",
        "Ein Quartiersparkhaus am Rand würde die Straßen entlasten.",
    ],
    "green_space": [
        "Die Grünfläche {an_s} ist ungepflegt und wird kaum genutzt.",
        "Mehr Straßenbäume würden im Sommer Schatten spenden und die Hitze mindern.",
        "Statt versiegelter Flächen wünschen wir uns Hochbeete und Sitzbänke.",
        "Die alten Linden {in_s} müssen unbedingt erhalten bleiben.",
        "Ein kleiner Quartierspark mit Blühstreifen wäre gut für Insekten und Menschen.",
        "Regenwasser könnte in Mulden versickern, statt die Kanalisation zu überlasten.",
    ],
    "cycling": [
        "Der Radweg {in_s} ist holprig und viel zu schmal für Lastenräder.",
        "Es fehlen sichere Fahrradabstellanlagen, die Räder stehen an jedem Laternenpfahl.",
        "Zwischen {s} und {s2} gibt es keine durchgängige Radverbindung.",
        "Ein geschützter Radfahrstreifen würde viele Menschen zum Umsteigen bewegen.",
        "An der Ampel {s}/{s2} fehlt eine Aufstellfläche für Radfahrende.",
        "Die Einbahnstraße sollte für den Radverkehr in Gegenrichtung freigegeben werden.",
    ],
    "playground": [
        "Der Spielplatz {an_s} ist in die Jahre gekommen, mehrere Geräte sind gesperrt.",
        "Für größere Kinder und Jugendliche gibt es im Quartier kaum Angebote.",
        "Ein Wasserspielplatz wäre im Sommer eine große Bereicherung.",
        "{Die_s} könnte an Wochenenden zur temporären Spielstraße werden.",
        "Der Sandkasten braucht dringend ein Sonnensegel.",
        "Rund um den Spielplatz fehlen Bänke für Eltern und Großeltern.",
    ],
    "noise": [
        "Der Straßenlärm {in_s} ist nachts kaum auszuhalten.",
        "Lkw fahren schon um fünf Uhr morgens zur Anlieferung, das weckt die ganze Straße.",
        "Das Kopfsteinpflaster verstärkt den Lärm jedes vorbeifahrenden Autos.",
        "Lärmmindernder Asphalt und Tempo 30 würden die Wohnqualität deutlich verbessern.",
        "An der Kreuzung {s}/{s2} wird ständig gehupt.",
        "Der Lärm der Baustelle hält seit Monaten an, auch am Samstag.",
    ],
    "public_transport": [
        "Die Bushaltestelle {an_s} hat weder Dach noch Sitzgelegenheit.",
        "Abends fährt der Bus nur alle zwanzig Minuten, das ist zu selten.",
        "Der Einstieg an der Haltestelle ist für Rollstuhlfahrende nicht barrierefrei.",
        "Eine eigene Busspur {in_s} würde den Bus pünktlicher machen.",
        "Ein Quartiersbus würde die Wege zum Bahnhof deutlich verkürzen.",
        "Die Fahrplananzeige an der Haltestelle ist seit Wochen defekt.",
    ],
    "walking": [
        "Der Gehweg {in_s} ist so schmal, dass zwei Kinderwagen nicht aneinander vorbeikommen.",
        "Ein Zebrastreifen {an_s} würde den Schulweg sicherer machen.",
        "Die Bordsteine an der Kreuzung {s}/{s2} sind für Rollatoren zu hoch.",
        "Der Fußweg {zur_s} ist abends dunkel, die Straßenbeleuchtung reicht nicht aus.",
        "Die Grünphase für Fußgängerinnen und Fußgänger reicht nicht einmal für die halbe Straße.",
        "Wurzelaufbrüche machen den Gehweg zur Stolperfalle.",
    ],
}
OPENERS = [
    "",
    "",
    "Ich wohne seit vielen Jahren im Quartier. ",
    "Als Mutter von zwei Kindern fällt mir täglich auf: ",
    "Moin! ",
    "Vielen Dank für die Möglichkeit zur Beteiligung. ",
    "Wir sind eine Hausgemeinschaft aus der Nachbarschaft. ",
    "Als Gewerbetreibender im Viertel möchte ich Folgendes anmerken: ",
]
CLOSERS = [
    "",
    "",
    " Bitte prüfen Sie das!",
    " Ich hoffe, dass sich hier bald etwas tut.",
    " Das wäre ein echter Gewinn für die ganze Nachbarschaft.",
    " Vielen Dank im Voraus.",
    " Was ist hier geplant?",
]
#: Clearly invented personal data (e-mail at example.org, Hamburg fiction phone range).
PERSONAL_DATA = [
    ("email", " Für Rückfragen: anna.beispiel@example.org"),
    ("email", " Schreiben Sie mir gern an nachbarschaft-musterweg@example.org."),
    ("phone", " Sie erreichen mich unter 040 66969 123."),
    ("phone", " Rückruf gern unter Tel. 040 66969 457."),
    ("name", " Frau Müller aus dem Nachbarhaus sieht das genauso."),
    ("name", " Herr Beispielmann vom Mieterverein hat das auch schon gemeldet."),
]
N_PERSONAL = 12

TRUTH_SCHEMA = {
    "geometry": "None",
    "properties": {"id": "str", "topics": "str", "personal_data": "str"},
}


@dataclass
class Contribution:
    """One generated contribution; ``topics`` and ``personal_data`` are hidden truth."""

    id: str
    title: str
    text: str
    category: str
    contribution_type: str
    date_created: str
    votes_up: int
    votes_down: int
    comments: int
    location: Point | None
    topics: list[str]
    personal_data: list[str] = field(default_factory=list)

    def properties(self, source: str) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "category": self.category,
            "contribution_type": self.contribution_type,
            "date_created": self.date_created,
            "votes_up": self.votes_up,
            "votes_down": self.votes_down,
            "comments": self.comments,
            "project": PROJECT,
            "url": None,
            "topics": None,  # hidden: see contributions_truth
            "source": source,
        }

    def truth(self) -> dict:
        return {
            "id": self.id,
            "topics": json.dumps(self.topics),
            "personal_data": json.dumps(self.personal_data),
        }


_FEMININE = ("straße", "allee", "chaussee", "twiete", "reihe", "gasse")


def _phrases(name: str, suffix: str = "") -> dict[str, str]:
    """Prepositional phrases for a street name: "in der Jollenstraße", "im Mühlenweg",
    "in der Straße Am Kai"."""
    if name.startswith("Am "):
        base = f"Straße {name}"
        forms = {"in": f"in der {base}", "an": f"an der {base}", "zur": f"zur {base}"}
        forms |= {"auf": f"auf der {base}", "Die": f"Die {base}", "die": f"die {base}"}
    elif name.lower().endswith(_FEMININE):
        forms = {"in": f"in der {name}", "an": f"an der {name}", "zur": f"zur {name}"}
        forms |= {"auf": f"auf der {name}", "Die": f"Die {name}", "die": f"die {name}"}
    else:
        forms = {"in": f"im {name}", "an": f"am {name}", "zur": f"zum {name}"}
        forms |= {"auf": f"auf dem {name}", "Die": f"Der {name}", "die": f"den {name}"}
    forms["In"] = forms["in"][0].upper() + forms["in"][1:]
    return {f"{key}_s{suffix}": value for key, value in forms.items()}


def _near(street: Street, rng: np.random.Generator) -> Point:
    """A point beside the street (on the pavement or the buildings' side), inside the box."""
    line = street.geometry
    at = float(rng.uniform(0.05, 0.95)) * line.length
    a, b = line.interpolate(max(0.0, at - 1.0)), line.interpolate(min(line.length, at + 1.0))
    dx, dy = b.x - a.x, b.y - a.y
    norm = float(np.hypot(dx, dy)) or 1.0
    offset = float(rng.uniform(3.0, 12.0)) * (1 if rng.random() < 0.5 else -1)
    p = line.interpolate(at)
    x = p.x - dy / norm * offset
    y = p.y + dx / norm * offset
    xmin, ymin, xmax, ymax = BBOX
    return Point(
        round(min(max(x, xmin + EDGE_MARGIN), xmax - EDGE_MARGIN), 2),
        round(min(max(y, ymin + EDGE_MARGIN), ymax - EDGE_MARGIN), 2),
    )


def build_contributions(
    streets: list[Street], rng: np.random.Generator, n: int = N_CONTRIBUTIONS
) -> list[Contribution]:
    """``n`` contributions naming the district's streets (deterministic for ``rng``)."""
    names = [s for s in streets if s.road_class != "service"] or list(streets)
    personal = sorted(rng.choice(n, size=min(N_PERSONAL, n), replace=False).tolist())
    popularity = np.array([3.0, 2.5, 2.0, 2.5, 1.2, 1.2, 1.0, 1.5])
    popularity /= popularity.sum()
    contributions = []
    for i in range(n):
        first = TOPICS[rng.choice(len(TOPICS), p=popularity)]
        topics = [first]
        if rng.random() < 0.4:
            others = [t for t in TOPICS if t != first]
            topics.append(others[rng.integers(len(others))])
        street, other = (names[j] for j in rng.choice(len(names), size=2, replace=False))

        slots = {"s": street.name, "s2": other.name}
        slots |= _phrases(street.name) | _phrases(other.name, "2")

        def fill(text: str, slots: dict[str, str] = slots) -> str:
            return text.format(**slots)

        title = fill(TITLES[first][rng.integers(len(TITLES[first]))])
        sentences = []
        for topic in topics:
            pool = SENTENCES[topic]
            k = 2 if topic == first else 1
            for j in rng.choice(len(pool), size=k, replace=False):
                sentences.append(fill(pool[j]))
        text = OPENERS[rng.integers(len(OPENERS))] + " ".join(sentences)
        text += CLOSERS[rng.integers(len(CLOSERS))]
        kinds: list[str] = []
        if i in personal:
            kind, sentence = PERSONAL_DATA[personal.index(i) % len(PERSONAL_DATA)]
            text += sentence
            kinds.append(kind)
        category = CATEGORIES[first] if rng.random() < 0.85 else "Sonstiges"
        rubric = RUBRICS[rng.choice(len(RUBRICS), p=np.array(RUBRIC_WEIGHTS))]
        created = PERIOD_START + timedelta(
            days=int(rng.integers(PERIOD_DAYS)),
            hours=int(rng.integers(14)),
            minutes=int(rng.integers(60)),
        )
        located = rng.random() < 0.65
        up = int(rng.poisson(4.0 if rubric != "Frage" else 1.5))
        contributions.append(
            Contribution(
                id=f"DEMO_BEITRAG_{i + 1:04d}",
                title=title,
                text=text,
                category=category,
                contribution_type=rubric,
                date_created=created.isoformat().replace("+00:00", "Z"),
                votes_up=up,
                votes_down=int(rng.poisson(1.0)),
                comments=int(rng.poisson(1.2)),
                location=_near(street, rng) if located else None,
                topics=topics,
                personal_data=kinds,
            )
        )
    return contributions


def write_contributions(path: Path, contributions: list[Contribution], source: str) -> None:
    """Add the layer ``contributions`` (through the feature store, so it has the same column
    types as imported contributions: ``topics`` JSON, ``date_created`` date-time) and the
    attribute table ``contributions_truth`` to the district's GeoPackage."""
    from cut_processes.io.dipas import CONTRIBUTION_FIELDS
    from cut_processes.io.store import open_store

    features = [
        {
            "geometry": mapping(c.location) if c.location is not None else None,
            "properties": c.properties(source),
        }
        for c in contributions
    ]
    open_store(path).replace_collection(
        "contributions",
        features,
        fields=dict(CONTRIBUTION_FIELDS),
        geometry_type="Point",
        srid=int(CRS.split(":")[1]),
    )
    with fiona.open(
        path, "w", driver="GPKG", schema=TRUTH_SCHEMA, layer="contributions_truth"
    ) as dst:
        dst.writerecords({"geometry": None, "properties": c.truth()} for c in contributions)
    with closing(sqlite3.connect(path)) as con, con:
        con.execute(
            'CREATE UNIQUE INDEX "contributions_truth_id_idx" ON "contributions_truth" ("id")'
        )

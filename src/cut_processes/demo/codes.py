"""ALKIS code lists as Hamburg's LoD2 buildings publish them (subset used by the demo).

``function`` values are ``31001_<Gebäudefunktion>`` (AX_Gebaeude, object type 31001);
``roof_type`` values are the plain AdV Dachform codes.
"""

from __future__ import annotations

#: ALKIS Gebäudefunktion code (with the ``31001_`` prefix) -> German name.
FUNCTIONS: dict[str, str] = {
    "31001_1000": "Wohngebäude",
    "31001_1010": "Wohnhaus",
    "31001_1020": "Wohnheim",
    "31001_1100": "Gemischt genutztes Gebäude mit Wohnen",
    "31001_1120": "Wohngebäude mit Handel und Dienstleistungen",
    "31001_1123": "Wohn- und Geschäftsgebäude",
    "31001_2000": "Gebäude für Wirtschaft oder Gewerbe",
    "31001_2020": "Bürogebäude",
    "31001_2050": "Geschäftsgebäude",
    "31001_2100": "Gebäude für Gewerbe und Industrie",
    "31001_2111": "Fabrik",
    "31001_2120": "Werkstatt",
    "31001_2143": "Lagerhalle, Lagerschuppen, Lagerhaus",
    "31001_2463": "Garage",
    "31001_3000": "Gebäude für öffentliche Zwecke",
    "31001_3021": "Allgemein bildende Schule",
    "31001_3065": "Kinderkrippe, Kindergarten, Kindertagesstätte",
    "31001_3211": "Sport-, Turnhalle",
}

FLAT = "1000"
MONO_PITCH = "2100"
GABLE = "3100"
HIP = "3200"
HALF_HIP = "3300"
MANSARD = "3400"
TENT = "3500"
SAWTOOTH = "3800"
ARCH = "3900"

#: AdV Dachform code -> German name.
ROOF_TYPES: dict[str, str] = {
    FLAT: "Flachdach",
    MONO_PITCH: "Pultdach",
    GABLE: "Satteldach",
    HIP: "Walmdach",
    HALF_HIP: "Krüppelwalmdach",
    MANSARD: "Mansardendach",
    TENT: "Zeltdach",
    SAWTOOTH: "Sheddach",
    ARCH: "Bogendach",
}

#: Roofs with a ridge or apex (pitched), which may hold an attic storey.
PITCHED_WITH_ATTIC = frozenset({GABLE, HIP, HALF_HIP, MANSARD, TENT})

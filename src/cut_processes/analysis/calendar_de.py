"""German calendar features per federal state: public and school holidays, bridge days.

Everything comes from the ``holidays`` package (PyPI, MIT licence; ``holidays>=0.108``):

* **public holidays**: ``holidays.country_holidays("DE", subdiv=state)``, the holidays laws
  of the 16 states. With no (or an unknown) state only the nationwide holidays are used and
  :attr:`CalendarFeatures.notes` says so. ``catholic`` adds the holidays of predominantly
  Catholic municipalities (Mariä Himmelfahrt, 15 August, in Bavaria: Munich and Augsburg
  have it, Nuremberg does not; Fronleichnam in some municipalities of Saxony and
  Thuringia); by default it is on for ``BY`` only.
* **school holidays** (Schulferien): the package's ``school`` category, compiled by its
  maintainers from the Kultusministerkonferenz's holiday calendars
  (https://www.kmk.org/service/ferienregelung/ferienkalender.html). A year counts as known
  for a state when the table has that state's summer break and a Christmas break starting in
  December of that year; on other days (and for unknown states) the feature is off and
  ``school_holiday_known`` is False, and the notes name the years.
* **bridge days** (Brückentage): a working day (Monday to Friday, no public holiday) between
  a public holiday and a weekend or another public holiday, e.g. the Friday after Ascension.
* **Christmas-New Year period**: 24 December to 1 January, the quiet days "zwischen den
  Jahren" (public holidays among them are also public holidays).

Days are numpy ``datetime64[D]`` arrays; the result's arrays are aligned with them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: The 16 federal states (ISO 3166-2:DE codes without the ``DE-`` prefix).
STATES = {
    "BB": "Brandenburg",
    "BE": "Berlin",
    "BW": "Baden-Württemberg",
    "BY": "Bayern",
    "HB": "Bremen",
    "HE": "Hessen",
    "HH": "Hamburg",
    "MV": "Mecklenburg-Vorpommern",
    "NI": "Niedersachsen",
    "NW": "Nordrhein-Westfalen",
    "RP": "Rheinland-Pfalz",
    "SH": "Schleswig-Holstein",
    "SL": "Saarland",
    "SN": "Sachsen",
    "ST": "Sachsen-Anhalt",
    "TH": "Thüringen",
}
SUMMER_BREAK = "Sommerferien"
SOURCE = (
    "holidays (PyPI) {version}: public holidays from the German states' holiday laws, "
    "school holidays from the KMK holiday calendars"
)


def normalise_state(state: str | None) -> str | None:
    """``'BY'`` from ``'by'``, ``'DE-BY'`` or ``'Bayern'``; None when not a German state."""
    if state is None:
        return None
    text = str(state).strip()
    code = text.upper().removeprefix("DE-")
    if code in STATES:
        return code
    for key, name in STATES.items():
        if name.casefold() == text.casefold():
            return key
    return None


@lru_cache(maxsize=256)
def _public(state: str | None, year: int, catholic: bool) -> dict[dt.date, str]:
    import holidays

    categories = ("public", "catholic") if catholic and state else ("public",)
    days = holidays.country_holidays(
        "DE", subdiv=state, years=year, categories=categories, language="de"
    )
    return dict(days.items())


@lru_cache(maxsize=256)
def _school(state: str, year: int) -> tuple[dict[dt.date, str], bool]:
    """The state's school holiday days of ``year`` and whether the year is fully known."""
    import holidays

    days = dict(
        holidays.country_holidays(
            "DE", subdiv=state, years=year, categories=("school",), language="de"
        ).items()
    )
    has_summer = any(name == SUMMER_BREAK for name in days.values())
    has_christmas = any(d.month == 12 for d in days)
    return days, has_summer and has_christmas


def library_version() -> str:
    """The version of the ``holidays`` package in use (for provenance)."""
    import holidays

    return holidays.__version__


@dataclass
class CalendarFeatures:
    """Calendar features of ``dates`` (all arrays aligned with ``dates``).

    ``weekday``: 0 = Monday .. 6 = Sunday. ``holiday_name``: the public holiday's German name
    or None. ``school_holiday`` is False where ``school_holiday_known`` is False.
    """

    state: str | None
    dates: np.ndarray
    weekday: np.ndarray
    public_holiday: np.ndarray
    holiday_name: list[str | None]
    school_holiday: np.ndarray
    school_summer: np.ndarray
    school_holiday_known: np.ndarray
    bridge_day: np.ndarray
    christmas_period: np.ndarray
    notes: list[str] = field(default_factory=list)
    source: str = ""


def _public_flags(
    days: list[dt.date], state: str | None, catholic: bool
) -> tuple[np.ndarray, list[str | None]]:
    names: list[str | None] = []
    for day in days:
        names.append(_public(state, day.year, catholic).get(day))
    return np.array([n is not None for n in names], dtype=bool), names


def calendar_features(
    dates: np.ndarray, state: str | None, *, catholic: bool | None = None
) -> CalendarFeatures:
    """Calendar features of ``dates`` (``datetime64[D]``) in the federal state ``state``.

    :param state: ISO code such as ``'BY'`` or ``'HH'`` (``'DE-BY'`` and state names work
        too); None or an unknown value: nationwide public holidays only, no school holidays
        (both said in ``notes``).
    :param catholic: add the holidays of predominantly Catholic municipalities [default:
        True for ``BY`` only].
    """
    dates = np.asarray(dates, dtype="datetime64[D]")
    code = normalise_state(state)
    notes: list[str] = []
    if code is None:
        if state is None:
            notes.append(
                "no federal state given: nationwide public holidays only, school holidays off"
            )
        else:
            notes.append(
                f"unknown federal state {state!r} (known: {', '.join(STATES)}): nationwide "
                "public holidays only, school holidays off"
            )
    use_catholic = (code == "BY") if catholic is None else bool(catholic and code)
    weekday = (dates.astype("int64") - 4) % 7  # 1970-01-01 was a Thursday
    py_days = [dt.date.fromisoformat(str(d)) for d in dates]
    public, names = _public_flags(py_days, code, use_catholic)

    # Neighbours for bridge days: the day before and after each date (may lie outside dates).
    one = np.timedelta64(1, "D")
    before = [dt.date.fromisoformat(str(d)) for d in dates - one]
    after = [dt.date.fromisoformat(str(d)) for d in dates + one]
    public_before, _ = _public_flags(before, code, use_catholic)
    public_after, _ = _public_flags(after, code, use_catholic)
    off_before = public_before | ((weekday - 1) % 7 >= 5)
    off_after = public_after | ((weekday + 1) % 7 >= 5)
    working = (weekday < 5) & ~public
    bridge = working & ((public_before & off_after) | (public_after & off_before))

    month = np.array([d.month for d in py_days], dtype=np.int8)
    day_of_month = np.array([d.day for d in py_days], dtype=np.int8)
    christmas = ((month == 12) & (day_of_month >= 24)) | ((month == 1) & (day_of_month == 1))

    school = np.zeros(len(dates), dtype=bool)
    summer = np.zeros(len(dates), dtype=bool)
    known = np.zeros(len(dates), dtype=bool)
    if code is not None and len(py_days):
        unknown_years = []
        for year in sorted({d.year for d in py_days}):
            days, complete = _school(code, year)
            in_year = np.array([d.year == year for d in py_days])
            if not complete:
                unknown_years.append(year)
                continue
            known |= in_year
            for i in np.flatnonzero(in_year):
                name = days.get(py_days[i])
                if name is not None:
                    school[i] = True
                    summer[i] = name == SUMMER_BREAK
        if unknown_years:
            notes.append(
                f"school holidays of {code} unknown for {', '.join(map(str, unknown_years))}: "
                "feature off for those days"
            )
    return CalendarFeatures(
        state=code,
        dates=dates,
        weekday=weekday.astype(np.int8),
        public_holiday=public,
        holiday_name=names,
        school_holiday=school,
        school_summer=summer,
        school_holiday_known=known,
        bridge_day=bridge,
        christmas_period=christmas,
        notes=notes,
        source=SOURCE.format(version=library_version()),
    )

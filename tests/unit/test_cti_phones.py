"""Caller IDs become E.164 the same way whatever the trunk or the spreadsheet wrote."""

import pytest

from cti.phones import normalise


@pytest.mark.parametrize("raw, e164", [
    # Milan landline, every way it arrives
    ("02 1234567", "+39021234567"),
    ("021234567", "+39021234567"),
    ("+39 02 1234567", "+39021234567"),
    ("+39021234567", "+39021234567"),
    ("0039 02 1234567", "+39021234567"),
    ("0039021234567", "+39021234567"),
    ("39021234567", "+39021234567"),
    ("(02) 123-4567", "+39021234567"),
    ("02/1234567", "+39021234567"),
    # Rome, Naples, a small town (6 to 11 digits with the trunk 0)
    ("06 69881", "+390669881"),
    ("081 5512345", "+390815512345"),
    ("0471 123456", "+390471123456"),
    # mobiles: 3xx, 10 digits (and old 9-digit ones)
    ("333 1234567", "+393331234567"),
    ("+39 333 123 4567", "+393331234567"),
    ("0039 3331234567", "+393331234567"),
    ("393331234567", "+393331234567"),
    ("3931234567", "+393931234567"),  # 393 is a mobile prefix, not the country code
    ("393931234567", "+393931234567"),
    ("338 123456", "+39338123456"),
    # toll-free and shared cost
    ("800 123 456", "+39800123456"),
    ("+39 848 123456", "+39848123456"),
    # foreign numbers keep their country code
    ("+44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("tel:+39-02-1234567", "+39021234567"),
    ("sip:+393331234567@pbx.example;user=phone", "+393331234567"),
])
def test_numbers_normalise_to_e164(raw, e164):
    n = normalise(raw)
    assert (n.status, n.e164) == ("ok", e164)


@pytest.mark.parametrize("raw", [None, "", "  ", "anonymous", "Anonymous", "RESTRICTED",
                                 "Private", "withheld", "unknown", "<unknown>", "unavailable",
                                 "Anonimo", "privato"])
def test_withheld_numbers_are_not_looked_up(raw):
    n = normalise(raw)
    assert n.status == "withheld" and n.e164 is None and n.display == "withheld"


@pytest.mark.parametrize("raw", [
    "caller1",  # a phone name, not a number
    "1001",  # an internal extension
    "112",  # an emergency short number
    "12345678",  # Italian numbers start with 0, 3 or 8
    "33312",  # too short for a mobile
    "333123456789",  # too long for a mobile
    "0212345678901",  # too long for a landline
    "+39 1234567",
    "+0 123456789",
    "+1234567",  # too short for E.164
    "+1234567890123456",  # too long for E.164
    "02 1234567 ext 5",
    "++39021234567",
    "0039",
])
def test_things_that_are_not_numbers_are_invalid(raw):
    n = normalise(raw)
    assert n.status == "invalid" and n.e164 is None
    assert n.display == raw.strip()

"""speech.masking: card-like digit runs never survive into transcripts or logs."""

from __future__ import annotations

import io
import logging

import pytest

from speech.masking import CardNumberFilter, install, mask_card_numbers, mask_dtmf

EN = "four five five six seven three seven five eight six eight nine nine eight five eight"
IT = "quattro cinque cinque sei sette tre sette cinque otto sei otto nove nove otto cinque otto"


def test_spoken_english_card_number_keeps_only_the_last_four():
    out = mask_card_numbers(f"my card number is {EN} thanks")
    assert out == "my card number is " + "* " * 12 + "nine eight five eight thanks"


def test_spoken_italian_card_number():
    out = mask_card_numbers(f"il numero è {IT}")
    assert out == "il numero è " + "* " * 12 + "nove otto cinque otto"


@pytest.mark.parametrize("keyed,masked", [
    ("4556737586899855", "************9855"),
    ("4556 7375 8689 9855", "**** **** **** 9855"),
    ("4556-7375-8689-9855", "****-****-****-9855"),
    ("4556.7375.8689.9855", "****.****.****.9855"),
])
def test_keyed_runs_with_spaces_and_dashes(keyed, masked):
    assert mask_card_numbers(f"dtmf {keyed} #") == f"dtmf {masked} #"
    assert mask_dtmf(keyed) == masked


def test_thirteen_and_nineteen_digits_are_masked_twelve_are_not():
    assert mask_card_numbers("123456789012") == "123456789012"
    assert mask_card_numbers("1234567890123") == "*********0123"
    assert mask_card_numbers("1234567890123456789") == "***************6789"
    twelve_spoken = "one two three four five six seven eight nine zero one two"
    assert mask_card_numbers(twelve_spoken) == twelve_spoken


def test_mixed_digits_and_words_count_together():
    out = mask_card_numbers("4556 7375 eight six eight nine 9855")
    assert out == "**** **** * * * * 9855"


def test_ordinary_text_and_short_numbers_are_untouched():
    for text in ("I was charged twice, 49.99 on 12/03", "someone is here: one",
                 "call me on 06 1234 567", "bone ten often zeroes", ""):
        assert mask_card_numbers(text) == text


def test_two_runs_in_one_line_are_both_masked_and_a_short_one_kept():
    out = mask_card_numbers("card 4556737586899855, zip 12345, old card 5105105105105100")
    assert out == "card ************9855, zip 12345, old card ************5100"


def test_logging_filter_masks_message_and_arguments():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("test.speech.masking")
    log.propagate = False
    log.addHandler(handler)
    handler.addFilter(CardNumberFilter())
    try:
        log.warning("heard %s from %s", EN, "caller 4556737586899855")
        log.warning("keyed 4556-7375-8689-9855")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "four five five six" not in text and "4556" not in text
    assert "nine eight five eight" in text and "****-****-****-9855" in text


def test_install_puts_one_filter_on_each_handler():
    log = logging.getLogger("test.speech.install")
    h1, h2 = logging.StreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())
    log.addHandler(h1)
    log.addHandler(h2)
    try:
        install(log)
        install(log)
        assert all(sum(isinstance(f, CardNumberFilter) for f in h.filters) == 1 for h in (h1, h2))
    finally:
        log.removeHandler(h1)
        log.removeHandler(h2)

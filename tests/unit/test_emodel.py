"""The E-model gives the figures ITU-T G.107 publishes and behaves as a planner expects."""

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from gateway.cli import main
from gateway.quality import emodel


def test_default_parameters_rate_93_2():
    assert emodel.r_factor() == pytest.approx(93.2, abs=0.05)


def test_clean_g711_call_scores_about_4_4():
    assert emodel.mos_from_r(emodel.r_factor("pcmu")) == pytest.approx(4.41, abs=0.01)


def test_codec_impairment_subtracts_ie():
    assert emodel.r_factor("g729a") == pytest.approx(93.2 - 11, abs=0.05)


def test_mos_mapping_is_clamped():
    assert emodel.mos_from_r(-5) == 1.0
    assert emodel.mos_from_r(120) == 4.5
    assert emodel.mos_from_r(50) == pytest.approx(1 + 1.75 - 50 * 10 * 50 * 7e-6)


@given(st.floats(0, 30), st.floats(0, 30), st.floats(0, 500))
def test_mos_never_rises_with_more_loss(a, b, delay):
    lo, hi = sorted((a, b))
    assert emodel.r_factor("pcmu", hi, delay) <= emodel.r_factor("pcmu", lo, delay) + 1e-9


@given(st.floats(0, 600), st.floats(0, 600), st.floats(0, 10))
def test_mos_never_rises_with_more_delay(a, b, loss):
    lo, hi = sorted((a, b))
    assert emodel.r_factor("pcmu", loss, hi) <= emodel.r_factor("pcmu", loss, lo) + 1e-9


@pytest.mark.parametrize("codec", ["pcmu", "g729a", "gsm", "ilbc"])
def test_bursty_loss_hurts_more_than_random_loss_at_the_same_rate(codec):
    random = emodel.r_factor(codec, 5, 50, burst_ratio=1.0)
    bursty = emodel.r_factor(codec, 5, 50, burst_ratio=2.5)
    assert bursty < random


def test_burst_ratio_from_gilbert_model():
    assert emodel.burst_ratio(0.05, 1 / 0.95) == pytest.approx(1.0)
    assert emodel.burst_ratio(0.05, 4) > 3.5
    assert emodel.burst_ratio(0.0, 10) == 1.0


def test_mouth_to_ear_delay_adds_network_buffer_and_packetisation():
    assert emodel.mouth_to_ear_delay_ms("pcmu", rtt_ms=100, jitter_ms=15) == 50 + 30 + 20


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown codec 'opus'; known: "):
        emodel.r_factor("opus")
    with pytest.raises(ValueError, match="loss must be 0..100"):
        emodel.r_factor("pcmu", 120)


def test_cli_prints_r_factor_and_mos_as_json():
    out = CliRunner().invoke(main, ["quality", "mos", "--codec", "PCMU", "--loss-pct", "0",
                                    "--delay-ms", "0"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["r_factor"] == pytest.approx(93.2, abs=0.05)
    assert doc["mos"] == pytest.approx(4.41, abs=0.01)


def test_cli_rejects_unknown_codec_with_one_line():
    out = CliRunner().invoke(main, ["quality", "mos", "--codec", "opus"])
    assert out.exit_code != 0
    assert "unknown codec 'opus'" in out.output
    assert "Traceback" not in out.output

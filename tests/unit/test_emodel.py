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


def test_mouth_to_ear_delay_uses_the_rtp_packet_time_and_the_codec_look_ahead():
    # G.729A goes in 20 ms packets (two 10 ms frames) with 5 ms look-ahead; the jitter buffer
    # holds at least one packet.
    assert emodel.mouth_to_ear_delay_ms("g729a", rtt_ms=40, jitter_ms=2) == 20 + 20 + 20 + 5
    # iLBC's default 30 ms mode has 10 ms look-ahead; its 20 ms mode 5 ms.
    assert emodel.mouth_to_ear_delay_ms("ilbc", rtt_ms=0, jitter_ms=0) == 30 + 30 + 10
    assert emodel.mouth_to_ear_delay_ms("ilbc20", rtt_ms=0, jitter_ms=0) == 20 + 20 + 5
    assert emodel.mouth_to_ear_delay_ms("pcmu", 0, 0, packet_ms=30) == 60
    with pytest.raises(ValueError):
        emodel.mouth_to_ear_delay_ms("pcmu", -1, 0)


# G.107 Annex B, Table B.1: the R at the lower limit of each quality category and its MOS.
@pytest.mark.parametrize("r, mos", [(90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10), (50, 2.58)])
def test_mos_at_the_g107_category_limits(r, mos):
    assert emodel.mos_from_r(r) == pytest.approx(mos, abs=0.01)  # G.107 prints 4.024 as 4.03


@given(st.floats(-10, 110), st.floats(-10, 110))
def test_mos_is_monotonic_in_r_and_never_below_1(a, b):
    lo, hi = sorted((a, b))
    assert 1.0 <= emodel.mos_from_r(lo) <= emodel.mos_from_r(hi) <= 4.5


@pytest.mark.parametrize("name, ie, bpl", [
    ("pcmu", 0, 25.1), ("pcma", 0, 25.1), ("pcmu-noplc", 0, 4.3), ("g729a", 11, 19.0),
    ("gsm", 20, 10.0), ("g722", 0, 25.1), ("ilbc", 10, 32.0),
])
def test_codec_table_holds_the_g113_planning_values(name, ie, bpl):
    c = emodel.codec(name)
    assert (c.ie, c.bpl) == (ie, bpl)
    assert c.source


def test_asterisk_format_names_are_understood():
    assert emodel.codec("(ulaw)").name == "pcmu"
    assert emodel.codec(" ALAW ").name == "pcma"


def test_ie_eff_follows_g107_eq_7_29():
    # G.729A with 2 % random loss: 11 + 84 * 2 / (2 + 19) = 19.0
    assert emodel.ie_eff(emodel.codec("g729a"), 2.0) == pytest.approx(19.0)
    # G.711 + PLC, 5 % loss, BurstR 2: 95 * 5 / (2.5 + 25.1)
    assert emodel.ie_eff(emodel.codec("pcmu"), 5.0, 2.0) == pytest.approx(95 * 5 / 27.6)


def test_delay_beyond_100_ms_adds_idd_as_in_g107():
    # At Ta = 200 ms, X = 1: Idd = 25 * (2**(1/6) - 3 * (1 + 3**-6)**(1/6) + 2) = 3.04
    idd = 25 * (2 ** (1 / 6) - 3 * (1 + 3 ** -6) ** (1 / 6) + 2)
    drop = emodel.r_factor("pcmu", 0, 100) - emodel.r_factor("pcmu", 0, 200)
    assert idd == pytest.approx(3.04, abs=0.01)
    assert drop > idd  # echo (Idte, Idle) grows too
    assert drop < idd + 3


@given(st.floats(0.5, 20), st.floats(1.0, 4.0), st.floats(1.01, 4.0))
def test_burstier_loss_never_rates_better(loss, b1, b2):
    lo, hi = sorted((b1, b2))
    assert emodel.r_factor("pcmu", loss, 80, hi) <= emodel.r_factor("pcmu", loss, 80, lo) + 1e-9


def _gilbert(p, q, per_interval, intervals, seed):
    import random

    rnd, state, out = random.Random(seed), 0, []
    for _ in range(intervals):
        lost = 0
        for _ in range(per_interval):
            state = (1 if rnd.random() < p else 0) if state == 0 else (0 if rnd.random() < q else 1)
            lost += state
        out.append((per_interval, lost))
    return out


def test_burst_ratio_estimate_is_1_for_random_loss():
    # 5 % Bernoulli loss (p + q = 1): chance spread must not read as bursts.
    est = [emodel.burst_ratio_from_intervals(_gilbert(0.05, 0.95, 25, 40, s)) for s in range(20)]
    assert sum(e == 1.0 for e in est) >= 18
    assert max(est) < 1.6


def test_burst_ratio_estimate_finds_bursts():
    # Mean burst 4 packets at ~4.8 % loss: BurstR = 1 / (0.0125 + 0.25) = 3.8
    est = sorted(emodel.burst_ratio_from_intervals(_gilbert(0.0125, 0.25, 25, 60, s))
                 for s in range(15))
    assert 2.5 < est[len(est) // 2] < 5.5
    assert est[0] > 1.0


def test_burst_ratio_estimate_needs_enough_data():
    assert emodel.burst_ratio_from_intervals([]) == 1.0
    assert emodel.burst_ratio_from_intervals([(25, 5), (25, 0), (25, 0)]) == 1.0
    assert emodel.burst_ratio_from_intervals([(25, 0)] * 10) == 1.0
    assert emodel.burst_ratio_from_intervals([(0, 0)] * 10 + [(25, -1)]) == 1.0


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

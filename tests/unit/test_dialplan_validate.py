"""Admins' files are checked before anything reaches Asterisk: every problem, with file and line."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.dialplan.check import check_dir, check_path
from gateway.dialplan.flow import check_flow, load_flow
from gateway.dialplan.problems import ConfigError
from gateway.dialplan.site import check_site, load_site
from gateway.settings import REPO_DIALPLANS

SITE = load_site(REPO_DIALPLANS / "site.yaml")

GOOD_FLOW = """\
flow: test
language: en-US
prompts:
  welcome: {text: "Hello. What do you need?"}
  retry: {text: "Sorry, again please."}
  fallback: {text: An agent will help.}
intents:
  billing:
    queue: billing
    dtmf: 1
    phrases: [my bill, a billing question]
  agent:
    queue: customer_care
    dtmf: 0
    phrases: [agent]
"""


def flow_problems(tmp_path: Path, text: str, name: str = "test"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    flow, problems = check_flow(path, SITE)
    return flow, [(p.line, p.message) for p in problems if p.severity == "error"]


def edit(old: str, new: str) -> str:
    assert old in GOOD_FLOW
    return GOOD_FLOW.replace(old, new)


def test_the_shipped_dialplans_are_valid_with_both_demo_flows():
    rep = check_dir(REPO_DIALPLANS)
    assert rep.errors == []
    assert set(rep.flows) >= {"demo-en", "demo-it"}
    for name in ("demo-en", "demo-it"):
        assert [i.name for i in rep.flows[name].intents] == ["billing", "lost_card", "tech_support", "agent"]
    assert rep.flows["demo-it"].language == "it" and rep.flows["demo-en"].engine == "pocketsphinx"



def test_a_good_flow_gives_no_problem(tmp_path):
    flow, problems = flow_problems(tmp_path, GOOD_FLOW)
    assert problems == [] and flow.by_digit("1").queue == "billing"
    assert flow.recognition.confidence_threshold == 0.5 and flow.fallback_intent == "agent"


def test_unknown_queue(tmp_path):
    _, p = flow_problems(tmp_path, edit("queue: billing", "queue: bills"))
    assert p == [(9, "intent billing: unknown queue 'bills'; the site has billing, customer_care, lost_card, tech_support")]


def test_duplicate_digit(tmp_path):
    _, p = flow_problems(tmp_path, edit("dtmf: 0", "dtmf: 1"))
    assert p == [(14, "intent agent: duplicate digit '1', already used by intent billing")]


def test_empty_intent(tmp_path):
    _, p = flow_problems(tmp_path, edit("    phrases: [agent]\n", ""))
    assert p == [(12, "intent agent: empty: give example phrases (and keywords) a caller may say")]


def test_bad_language(tmp_path):
    _, p = flow_problems(tmp_path, edit("language: en-US", "language: klingon"))
    assert len(p) == 1 and p[0][0] == 2 and p[0][1].startswith("language: 'klingon' is not supported; use one of")


def test_missing_prompt(tmp_path):
    _, p = flow_problems(tmp_path, edit('  retry: {text: "Sorry, again please."}\n', ""))
    assert p == [(3, "prompts: missing prompt 'retry'")]


def test_missing_prompt_sound_file(tmp_path):
    _, p = flow_problems(tmp_path, edit("{text: \"Hello. What do you need?\"}", "{file: sounds/hello.wav}"))
    assert p == [(4, "prompt welcome: sound file 'sounds/hello.wav' not found")]


def test_confirm_prompt_is_required_only_when_confirmation_is_on(tmp_path):
    _, p = flow_problems(tmp_path, GOOD_FLOW + "recognition:\n  confirm_below: 0.8\n")
    assert p == [(3, "prompts: missing prompt 'confirm'")]


def test_yaml_syntax_error_has_its_line(tmp_path):
    _, p = flow_problems(tmp_path, edit("phrases: [my bill, a billing question]", "phrases: [my bill"))
    assert len(p) == 1 and p[0][0] in (11, 12) and p[0][1].startswith("YAML syntax:")


def test_duplicate_key(tmp_path):
    _, p = flow_problems(tmp_path, GOOD_FLOW + "language: it\n")
    assert p == [(16, "duplicate key 'language' (first at line 2)")]


def test_misspelt_option(tmp_path):
    _, p = flow_problems(tmp_path, edit("    dtmf: 0\n", "    dtfm: 0\n"))
    assert p == [(14, "unknown option 'intents.agent.dtfm'")]


def test_bad_digit_and_bad_range(tmp_path):
    _, p = flow_problems(tmp_path, edit("dtmf: 1", "dtmf: 12") + "recognition:\n  confidence_threshold: 1.5\n")
    assert (10, "intents.billing.dtmf: must be one key of 0-9, * or #, got '12'") in p
    assert any(line == 17 and "confidence_threshold" in m and "less than or equal to 1" in m for line, m in p)


def test_the_same_phrase_in_two_intents_is_ambiguous(tmp_path):
    _, p = flow_problems(tmp_path, edit("phrases: [agent]", "phrases: [agent, My  Bill]"))
    assert p == [(15, "intent agent: phrase 'My Bill' is also an example of intent billing")]


def test_pocketsphinx_cannot_do_italian(tmp_path):
    _, p = flow_problems(tmp_path, edit("language: en-US", "language: it") + "recognition:\n  engine: pocketsphinx\n")
    assert len(p) == 1 and p[0][0] == 17 and "ships only an English model" in p[0][1]


def test_fallback_must_be_an_intent_of_the_flow(tmp_path):
    _, p = flow_problems(tmp_path, GOOD_FLOW + "fallback_intent: human\n")
    assert p == [(16, "fallback_intent: 'human' is not one of this flow's intents")]


def test_the_flow_name_matches_its_file(tmp_path):
    _, p = flow_problems(tmp_path, GOOD_FLOW, name="other")
    assert p == [(1, "flow: name 'test' must match the file name 'other'")]


def test_every_problem_is_reported_at_once_and_load_flow_refuses(tmp_path):
    text = edit("queue: billing", "queue: bills").replace("dtmf: 0", "dtmf: 1")
    path = tmp_path / "test.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_flow(path, SITE)
    lines = str(exc.value).splitlines()
    assert len(lines) == 2 and lines[0].endswith("test.yaml:9: error: intent billing: unknown queue "
                                                  "'bills'; the site has billing, customer_care, lost_card, tech_support")


# --- the site file ------------------------------------------------------------------------

GOOD_SITE = """\
queues:
  billing: {number: 6001}
  customer_care: {number: 6004}
phones:
  agent1: {kind: agent}
ivr:
  100: demo-en
"""


def site_problems(tmp_path, text):
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "demo-en.yaml").write_text("flow: demo-en\n")
    path = tmp_path / "site.yaml"
    path.write_text(text)
    site, problems = check_site(path)
    return site, [(p.line, p.message) for p in problems if p.severity == "error"]


def test_a_good_site(tmp_path):
    site, p = site_problems(tmp_path, GOOD_SITE + "phone_pools:\n  load: {kind: caller, count: 3}\n")
    assert p == [] and list(site.phones) == ["agent1", "load1", "load2", "load3"]
    assert site.agents() == ["agent1"] and site.queues["billing"].label == "billing"


def test_a_number_used_twice(tmp_path):
    _, p = site_problems(tmp_path, GOOD_SITE.replace("number: 6004", "number: 6001"))
    assert p == [(3, "queue customer_care: number 6001 is already used by queue billing (line 2)")]


def test_a_reserved_number(tmp_path):
    _, p = site_problems(tmp_path, GOOD_SITE.replace("100: demo-en", "199: demo-en"))
    assert p == [(7, "ivr flow demo-en: number 199 is reserved for the line check")]


def test_an_ivr_number_whose_flow_does_not_exist(tmp_path):
    _, p = site_problems(tmp_path, GOOD_SITE.replace("100: demo-en", "100: demo-fr"))
    assert len(p) == 1 and p[0][0] == 7 and p[0][1].startswith("ivr 100: flow 'demo-fr' not found")


def test_bad_names_and_codecs(tmp_path):
    _, p = site_problems(tmp_path, GOOD_SITE.replace("agent1: {kind: agent}",
                                                     "Agent-1: {kind: agent, codecs: [mp3]}"))
    assert any(line == 5 and "unknown codec" in m for line, m in p)


def test_a_broken_site_makes_the_sandbox_and_render_refuse(tmp_path):
    with pytest.raises(ConfigError):
        path = tmp_path / "site.yaml"
        path.write_text("queues: {}\n")
        load_site(path)


# --- the command --------------------------------------------------------------------------

def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gateway.cli.entry", "dialplan", *args],
                          check=False, capture_output=True, text=True, timeout=60, cwd=cwd)


def test_validate_exits_0_on_the_shipped_dialplans():
    r = cli("validate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK: site demo: 4 queues, 31 phones, 2 IVR numbers; flow demo-en")


def test_validate_lists_every_error_with_file_and_line_and_exits_1(tmp_path):
    path = tmp_path / "test.yaml"
    path.write_text(edit("queue: billing", "queue: bills").replace("dtmf: 0", "dtmf: 1"))
    r = cli("validate", str(path))
    assert r.returncode == 1
    assert "test.yaml:9: error: intent billing: unknown queue 'bills'" in r.stderr
    assert "test.yaml:14: error: intent agent: duplicate digit '1'" in r.stderr
    assert "2 errors; nothing was changed" in r.stderr and "Traceback" not in r.stderr


def test_a_template_syntax_error_is_reported_with_its_line(tmp_path):
    import shutil

    d = tmp_path / "dialplans"
    shutil.copytree(REPO_DIALPLANS, d)
    (d / "rtp.conf.j2").write_text("[general]\nrtpstart = {{ a.rtp_start }\n")
    rep = check_path(d, d)
    assert [(p.file.rsplit("/", 1)[-1], p.line) for p in rep.errors] == [("rtp.conf.j2", 2)]


def test_render_writes_configs_and_prompts_and_generates_secrets_once(tmp_path):
    import json
    import os

    env = dict(os.environ, CENTRALINO_DATA_DIR=str(tmp_path / "data"),
               CENTRALINO_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "gateway.cli.entry", "dialplan", "render",
           "--out", str(tmp_path / "etc"), "--sounds", str(tmp_path / "sounds")]
    r = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["prompts"] == 22 and "pjsip.conf" in out["configs"]
    secrets = tmp_path / "data" / "secrets.json"
    assert oct(secrets.stat().st_mode & 0o777) == "0o600"
    first = json.loads(secrets.read_text())
    assert f"password = {first['sip:agent1']}" in (tmp_path / "etc" / "pjsip.conf").read_text()
    wav = tmp_path / "sounds" / "demo-en" / "confirm-billing.wav"
    assert wav.stat().st_size > 8000  # a second or more of 8 kHz speech
    r = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(secrets.read_text()) == first  # generated once


def test_a_queue_named_like_a_queues_conf_section_is_refused(tmp_path):
    _, p = site_problems(tmp_path, GOOD_SITE.replace("customer_care:", "general:"))
    assert p == [(3, ("queue name 'general' is reserved: Asterisk's queues.conf reads [general] "
                     "as its settings, so such a queue would not exist"))]


def test_a_caller_id_must_be_a_name_and_number(tmp_path):
    site, p = site_problems(tmp_path, GOOD_SITE.replace("{kind: agent}", '{kind: agent, callerid: "<3351234567>"}'))
    assert p == [] and site.phones["agent1"].callerid == "<3351234567>"
    _, p = site_problems(tmp_path, GOOD_SITE.replace("{kind: agent}", "{kind: agent, callerid: Mario}"))
    assert p == [(5, "phones.agent1.callerid: use \"Name <number>\" or a number, got 'Mario'")]

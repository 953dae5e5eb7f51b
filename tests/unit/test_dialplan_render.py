"""The Asterisk configuration is rendered from settings and the site file, never by hand."""

from pathlib import Path

import pytest

from gateway.dialplan.render import render_all
from gateway.dialplan.site import load_site
from gateway.settings import REPO_DIALPLANS, Settings

SITE = load_site(REPO_DIALPLANS / "site.yaml")


def render(site=SITE, **asterisk):
    s = Settings(asterisk={"sip_port": 15060, "ami_port": 15038, "http_port": 18088,
                           "rtp_start": 30000, "rtp_end": 30099, **asterisk})
    return render_all(s, site, ami_password="amipw", ari_password="aripw",
                      base="/var/lib/centralino/t", phones={p: f"{p}-pw" for p in site.phones})


def test_every_listener_binds_the_configured_host_and_port():
    conf = render()
    assert "bind = 127.0.0.1:15060" in conf["pjsip.conf"]
    assert "bindaddr = 127.0.0.1" in conf["manager.conf"] and "port = 15038" in conf["manager.conf"]
    assert "bindport = 18088" in conf["http.conf"]
    assert "rtpstart = 30000" in conf["rtp.conf"] and "rtcpinterval = 500" in conf["rtp.conf"]


def test_secrets_come_from_the_caller_not_the_templates():
    conf = render()
    assert "secret = amipw" in conf["manager.conf"]
    assert "password = aripw" in conf["ari.conf"]


def test_instances_keep_their_own_directories():
    conf = render()
    assert "astrundir => /var/lib/centralino/t/run" in conf["asterisk.conf"]
    assert "[directories]\n" in conf["asterisk.conf"]  # not a template section: it must apply


def test_no_anonymous_endpoint_is_rendered():
    assert "anonymous" not in render()["pjsip.conf"].split("\n", 2)[2].lower()


def test_each_phone_of_the_site_authenticates_with_its_own_password():
    pjsip = render()["pjsip.conf"]
    for phone in ("caller1", "agent4", "load20"):
        assert f"username = {phone}\npassword = {phone}-pw" in pjsip
    assert "[agent1](phone)\nauth = agent1-auth\naors = agent1\nallow = ulaw,alaw,g722\ncontext = from-agents" in pjsip


def test_a_phone_without_a_password_is_refused():
    s = Settings()
    with pytest.raises(ValueError, match="no SIP password for phone"):
        render_all(s, SITE, ami_password="a", ari_password="b", base="/x", phones={})


def test_every_queue_has_its_direct_number_and_a_context_the_ivr_continues_into():
    conf = render()
    ext, queues = conf["extensions.conf"], conf["queues.conf"]
    for number, queue in zip(range(6001, 6005), ("billing", "lost_card", "tech_support", "customer_care")):
        assert f"exten => {number},1,Goto(centralino-queues,{queue},1)" in ext
        assert f"exten => {queue},1,Answer()\n same => n,Queue({queue},,,,300)" in ext
        assert f"[{queue}](queue-defaults)" in queues
    assert "servicelevel = 10" in queues.split("[lost_card]")[1].split("[")[0]
    assert "member =>" not in queues  # agents join from the desktop


def test_ivr_numbers_go_to_the_stasis_app_with_their_flow():
    ext = render()["extensions.conf"]
    assert "exten => 100,1,NoOp(Centralino IVR demo-en)\n same => n,Stasis(centralino,ivr,demo-en)" in ext
    assert "Stasis(centralino,ivr,demo-it)" in ext


def test_agents_can_dial_each_other_and_reach_what_callers_reach():
    ext = render()["extensions.conf"]
    agents = ext.split("[from-agents]")[1]
    assert "exten => agent2,1,Dial(PJSIP/agent2,30)" in agents
    assert "caller1" not in agents and "include => from-callers" in agents


def test_the_shipped_dialplans_render_to_the_files_asterisk_needs(tmp_path: Path):
    assert {"pjsip.conf", "extensions.conf", "queues.conf", "manager.conf", "ari.conf",
            "http.conf", "rtp.conf", "modules.conf", "asterisk.conf"} <= set(render())


def test_a_phone_may_present_a_caller_id():
    pjsip = render()["pjsip.conf"]
    assert 'aors = demo1\nallow = ulaw,alaw,g722\ncallerid = "Mario Rossi" <+390212345678>' in pjsip
    assert "callerid" not in pjsip.split("[caller1](phone)")[1].split("[caller1](phone-aor)")[0]


def test_ami_admits_only_the_permitted_networks():
    conf = render()["manager.conf"]
    assert "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/32\n" in conf
    conf = render(ami_permit=["127.0.0.1/32", "172.18.0.0/16"])["manager.conf"]
    assert "permit = 127.0.0.1/32\npermit = 172.18.0.0/16\n" in conf


def test_a_bad_ami_network_is_a_settings_error():
    with pytest.raises(ValueError, match="asterisk.ami_permit: 'the office' is not a network"):
        Settings(asterisk={"ami_permit": ["the office"]})


def test_listening_on_every_interface_renders_no_media_address_and_nat_is_explicit():
    pjsip = render(host="0.0.0.0", external_address="203.0.113.7")["pjsip.conf"]
    assert "media_address" not in pjsip.replace("external_media_address", "")
    assert "external_media_address = 203.0.113.7\nexternal_signaling_address = 203.0.113.7" in pjsip
    assert "media_address = 127.0.0.1\nbind_rtp_to_media_address = yes" in render()["pjsip.conf"]

"""The Asterisk configuration is rendered from settings: ports, bind address and secrets."""

from gateway.dialplan.render import render_all
from gateway.settings import Settings


def render(**asterisk):
    s = Settings(asterisk={"sip_port": 15060, "ami_port": 15038, "http_port": 18088,
                           "rtp_start": 30000, "rtp_end": 30099, **asterisk})
    return render_all(s, ami_password="amipw", ari_password="aripw", base="/var/lib/centralino/t",
                      phones={"caller1": "c1pw", "agent1": "a1pw"})


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
    assert "anonymous" not in render()["pjsip.conf"].split("\n", 1)[1].lower()


def test_each_phone_authenticates_with_its_own_generated_password():
    pjsip = render()["pjsip.conf"]
    assert "username = caller1\npassword = c1pw" in pjsip
    assert "username = agent1\npassword = a1pw" in pjsip
    assert "[anonymous]" not in pjsip.lower()


def test_every_queue_has_a_direct_number_and_a_context_the_ivr_can_continue_into():
    conf = render()
    ext = conf["extensions.conf"]
    for number, queue in zip(range(6001, 6005), ("billing", "lost_card", "tech_support", "general")):
        assert f"exten => {number},1,Goto(centralino-queues,{queue},1)" in ext
        assert f"exten => {queue},1,Answer()" in ext
        assert f"[{queue}](queue-defaults)" in conf["queues.conf"]
    assert "member => PJSIP/agent1,0,agent1" in conf["queues.conf"]

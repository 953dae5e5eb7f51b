"""The Asterisk configuration is rendered from settings: ports, bind address and secrets."""

from gateway.dialplan.render import render_all
from gateway.settings import Settings


def render(**asterisk):
    s = Settings(asterisk={"sip_port": 15060, "ami_port": 15038, "http_port": 18088,
                           "rtp_start": 30000, "rtp_end": 30099, **asterisk})
    return render_all(s, ami_password="amipw", ari_password="aripw", base="/var/lib/centralino/t")


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

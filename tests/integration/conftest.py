"""A real Asterisk 22 sandbox for the whole test session, on free ports and its own instance."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from gateway.sandbox.instance import Sandbox
from gateway.settings import Settings


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("integration tests need root for the Asterisk sandbox (chroot, mount)")
    rtp = 20000 + (os.getpid() % 200) * 100
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("centralino-data"),
        asterisk={"instance": f"pytest-{uuid.uuid4().hex[:8]}", "sip_port": _free_port(socket.SOCK_DGRAM),
                  "ami_port": _free_port(), "http_port": _free_port(),
                  "rtp_start": rtp, "rtp_end": rtp + 99},
    )
    sb = Sandbox(settings)
    sb.settings = sb.up()
    try:
        yield sb
    finally:
        sb.down()

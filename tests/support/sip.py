"""A scripted pjsua2 caller and agent phone, run in one thread (pjsua2 wants a single thread).

Used by integration tests to place real SIP calls with real G.711 RTP through the sandbox.
"""

from __future__ import annotations

import gc
import time

import pjsua2 as pj


class _Account(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.incoming: list[_Call] = []
        self.reg_code = 0

    def onRegState(self, prm) -> None:
        self.reg_code = prm.code

    def onIncomingCall(self, prm) -> None:
        self.incoming.append(_Call(self, prm.callId))  # pjsua2 wants the Call made here


class _Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.state = None

    def onCallState(self, prm) -> None:
        self.state = self.getInfo().state


def queue_call(host: str, sip_port: int, caller: tuple[str, str], agent: tuple[str, str],
               number: str, talk_s: float = 2.0, local_port: int = 0) -> dict:
    """caller dials ``number``; the agent's phone rings, answers, talks, caller hangs up."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.noVad = True  # keep RTP flowing through silence, as a real phone line does
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = local_port
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    ep.codecSetPriority("PCMU/8000", 255)
    accounts, calls, result = [], [], {}

    def poll(cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ep.libHandleEvents(20)
            if cond():
                return True
        return False

    try:
        for user, password in (caller, agent):
            ac = pj.AccountConfig()
            ac.idUri = f"sip:{user}@{host}:{sip_port}"
            ac.regConfig.registrarUri = f"sip:{host}:{sip_port}"
            ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
            ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
            acc = _Account()
            acc.create(ac)
            accounts.append(acc)
        if not poll(lambda: all(a.reg_code == 200 for a in accounts), 10):
            raise AssertionError(f"registration failed: {[a.reg_code for a in accounts]}")
        out = _Call(accounts[0])
        calls.append(out)
        prm = pj.CallOpParam(True)
        out.makeCall(f"sip:{number}@{host}:{sip_port}", prm)
        if not poll(lambda: accounts[1].incoming, 15):
            raise AssertionError("the agent's phone never rang")
        inc = accounts[1].incoming[0]
        ans = pj.CallOpParam()
        ans.statusCode = 200
        inc.answer(ans)
        poll(lambda: False, talk_s)
        result["rtp_packets_received"] = inc.getStreamStat(0).rtcp.rxStat.pkt
        out.hangup(pj.CallOpParam())
        poll(lambda: out.state == pj.PJSIP_INV_STATE_DISCONNECTED, 5)
        poll(lambda: False, 0.5)
        out = inc = None  # no Call may outlive libDestroy
    finally:
        calls.clear()
        for a in accounts:
            a.incoming.clear()
        gc.collect()
        for a in accounts:
            a.shutdown()
        accounts.clear()
        gc.collect()
        ep.libDestroy()
    return result


if __name__ == "__main__":  # run in its own process: pjsua2 owns the process's threads
    import json
    import sys

    host, port, cu, cp, au, ap, number, talk = sys.argv[1:9]
    print(json.dumps(queue_call(host, int(port), (cu, cp), (au, ap), number, float(talk))))
    sys.stdout.flush()

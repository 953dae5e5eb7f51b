"""Agent state from AMI event sequences (pure logic, shaped like Asterisk 22's events)."""

from __future__ import annotations

from cti.agents import WRAP_UP, AgentRegistry, endpoint_of


def ev(**h):
    return lambda k: h.get(k)


def registry():
    r = AgentRegistry()
    r.put(1, "alice", "agent1", "red", ("billing", "lost_card"))
    r.put(2, "bob", "agent2", "blue", ("billing",))
    return r


def feed(r, name, is_customer=lambda lid: True, **h):
    return r.handle(name, ev(**h), is_customer)


def test_endpoint_names_come_from_pjsip_channels_only():
    assert endpoint_of("PJSIP/agent1-0000002a") == "agent1"
    assert endpoint_of("PJSIP/agent1") == "agent1"
    assert endpoint_of("Local/100@from-callers-0001;1") is None
    assert endpoint_of(None) is None


def test_membership_and_pause_follow_asterisk():
    r = registry()
    a = r.by_name["alice"]
    assert a.state() == ("logged_out", None)
    feed(r, "QueueMemberAdded", Queue="billing", Interface="PJSIP/agent1", Paused="0")
    feed(r, "QueueMemberAdded", Queue="lost_card", Interface="PJSIP/agent1", Paused="0")
    assert a.state() == ("ready", None)
    feed(r, "QueueMemberPause", Queue="billing", Interface="PJSIP/agent1", Paused="1",
         PausedReason="lunch")
    assert a.state() == ("ready", None)  # still takes lost_card calls
    feed(r, "QueueMemberPause", Queue="lost_card", Interface="PJSIP/agent1", Paused="1",
         PausedReason="lunch")
    assert a.state() == ("paused", "lunch")
    feed(r, "QueueMemberRemoved", Queue="billing", Interface="PJSIP/agent1")
    feed(r, "QueueMemberRemoved", Queue="lost_card", Interface="PJSIP/agent1")
    assert a.state() == ("logged_out", None)
    # an interface no user has is ignored
    assert feed(r, "QueueMemberAdded", Queue="billing", Interface="PJSIP/agent9") == []


def test_a_queue_call_rings_connects_and_leaves_wrap_up_until_done():
    r = registry()
    a = r.by_name["alice"]
    feed(r, "QueueMemberAdded", Queue="billing", Interface="PJSIP/agent1", Paused="0")
    feed(r, "Newchannel", Channel="PJSIP/agent1-00000001", Uniqueid="u2", Linkedid="L1")
    [e] = feed(r, "AgentCalled", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    assert (e.kind, e.linkedid, e.queue) == ("offered", "L1", "billing")
    assert a.state() == ("ringing", None) and a.involved("L1")
    assert feed(r, "Newstate", Channel="PJSIP/agent1-00000001", Uniqueid="u2",
                ChannelStateDesc="Ringing") == []  # already offered by the queue
    [e] = feed(r, "AgentConnect", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    assert e.kind == "connected" and a.state() == ("on_call", None)
    feed(r, "QueueMemberPause", Queue="billing", Interface="PJSIP/agent1", Paused="1",
         PausedReason=WRAP_UP)
    assert a.state() == ("on_call", None)  # pre-paused, still talking
    [e] = feed(r, "AgentComplete", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1",
               Reason="caller")
    assert e.kind == "ended_call" and a.state() == ("wrap_up", None) and a.wrapup == ["L1"]
    assert feed(r, "Hangup", Channel="PJSIP/agent1-00000001", Uniqueid="u2") == []
    assert a.involved("L1")  # wrap-up still open: the agent may still read the history
    assert r.finish_wrapup(a, "L1") == ["L1"]
    assert a.state() == ("wrap_up", None)  # Asterisk still holds the wrap-up pause
    a.releasing = True
    assert a.state() == ("ready", None)
    a.releasing = False
    feed(r, "QueueMemberPause", Queue="billing", Interface="PJSIP/agent1", Paused="0")
    assert a.state() == ("ready", None) and not a.involved("L1")


def test_an_offer_ends_on_no_answer_abandon_or_hangup():
    r = registry()
    a = r.by_name["alice"]
    feed(r, "AgentCalled", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    [e] = feed(r, "AgentRingNoAnswer", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    assert (e.kind, e.why) == ("ended_offer", "no_answer") and not a.offered
    feed(r, "AgentCalled", Queue="billing", Interface="PJSIP/agent1", Linkedid="L2")
    feed(r, "AgentCalled", Queue="billing", Interface="PJSIP/agent2", Linkedid="L2")
    out = feed(r, "QueueCallerAbandon", Queue="billing", Linkedid="L2")
    assert sorted((e.agent.username, e.why) for e in out) == [("alice", "abandoned"),
                                                              ("bob", "abandoned")]
    assert a.state() == ("logged_out", None)


def test_a_direct_call_to_an_agent_phone_pops_only_for_customer_calls():
    r = registry()
    b = r.by_name["bob"]
    feed(r, "Newchannel", Channel="PJSIP/agent2-00000007", Uniqueid="u7", Linkedid="L1")
    [e] = feed(r, "Newstate", Channel="PJSIP/agent2-00000007", Uniqueid="u7",
               ChannelStateDesc="Ringing")
    assert (e.kind, e.queue) == ("offered", None)
    [e] = feed(r, "Newstate", Channel="PJSIP/agent2-00000007", Uniqueid="u7",
               ChannelStateDesc="Up")
    assert e.kind == "connected" and b.connected == {"L1": None}
    [e] = feed(r, "Hangup", Channel="PJSIP/agent2-00000007", Uniqueid="u7")
    assert e.kind == "ended_call" and b.wrapup == ["L1"]
    # an agent's own call to a colleague is no customer call: no pop
    feed(r, "Newchannel", Channel="PJSIP/agent2-00000008", Uniqueid="u8", Linkedid="L9")
    assert feed(r, "Newstate", lambda lid: lid != "L9", Channel="PJSIP/agent2-00000008",
                Uniqueid="u8", ChannelStateDesc="Ringing") == []


def test_an_attended_transfer_hands_the_customer_call_to_the_consulted_agent():
    r = registry()
    a, b = r.by_name["alice"], r.by_name["bob"]
    feed(r, "AgentCalled", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    feed(r, "AgentConnect", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1")
    # alice consults bob on a second call L2 (her own call: no pop for bob)
    feed(r, "Newchannel", Channel="PJSIP/agent1-00000003", Uniqueid="c1", Linkedid="L2")
    feed(r, "Newchannel", Channel="PJSIP/agent2-00000004", Uniqueid="c2", Linkedid="L2")
    assert feed(r, "Newstate", lambda lid: lid != "L2", Channel="PJSIP/agent2-00000004",
                Uniqueid="c2", ChannelStateDesc="Up") == []
    [e] = feed(r, "AttendedTransfer", OrigTransfererLinkedid="L1",
               SecondTransfererLinkedid="L2", SecondTransfererChannel="PJSIP/agent1-00000003")
    assert (e.kind, e.agent.username, e.linkedid, e.why) == ("moved", "bob", "L1", "L2")
    assert b.connected == {"L1": None}
    [e] = feed(r, "AgentComplete", Queue="billing", Interface="PJSIP/agent1", Linkedid="L1",
               Reason="transfer")
    assert a.wrapup == ["L1"]
    [e] = feed(r, "Hangup", Channel="PJSIP/agent2-00000004", Uniqueid="c2")
    assert e.kind == "ended_call" and b.wrapup == ["L1"]


def test_queue_status_after_a_reconnect_replaces_what_we_believed():
    r = registry()
    a, b = r.by_name["alice"], r.by_name["bob"]
    feed(r, "QueueMemberAdded", Queue="billing", Interface="PJSIP/agent1", Paused="0")
    r.resync([ev(Queue="lost_card", Location="PJSIP/agent1", Paused="1", PausedReason="meeting"),
              ev(Queue="billing", Location="PJSIP/agent2", Paused="0")])
    assert a.member == {"lost_card": (True, "meeting")} and a.state() == ("paused", "meeting")
    assert b.state() == ("ready", None)
    r.resync([])
    assert a.state() == b.state() == ("logged_out", None)
    # a wrap-up pause whose call we never saw (gateway restarted) is still after-call work
    r.resync([ev(Queue="billing", Location="PJSIP/agent1", Paused="1", PausedReason=WRAP_UP)])
    assert a.state() == ("wrap_up", None)


def test_a_new_phone_for_an_agent_moves_them():
    r = registry()
    r.put(1, "alice", "agent3", "red", ("billing",))
    assert "agent1" not in r.by_endpoint and r.by_endpoint["agent3"].username == "alice"
    r.remove("alice")
    assert "alice" not in r.by_name and "agent3" not in r.by_endpoint

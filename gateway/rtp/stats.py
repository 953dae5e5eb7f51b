"""Receiver statistics for one RTP stream, as RFC 3550 Appendix A defines them.

Sequence tracking is Appendix A.1: a new source must send ``MIN_SEQUENTIAL`` packets in sequence
before it counts (probation, so a stray packet does not start a stream), sequence numbers wrap
into a cycle count, a jump of up to ``MAX_DROPOUT`` ahead is loss, a packet up to
``MAX_MISORDER`` behind is late (reordered or duplicate), and anything else is a restart only
when the packet after it confirms it. One deliberate difference: the packets that passed
probation are counted (the RFC drops all but the last), so a clean stream of N packets reports
N received and 0 lost. Loss is Appendix A.3 (expected minus received, never below 0 here).
Jitter is the interarrival estimate of section 6.4.1 / Appendix A.8, in timestamp units, kept
as a float (the RFC's integer version is a fixed-point trick for C).

A change of SSRC starts a new source: the counts of the old one are kept in the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2

# What :meth:`ReceiverStats.update` says about a packet.
ACCEPT, PROBATION, LATE, BAD_JUMP, RESTART = "accept", "probation", "late", "bad_jump", "restart"


@dataclass(frozen=True, slots=True)
class Snapshot:
    received: int
    expected: int
    lost: int
    late: int  # reordered or duplicated packets (behind the highest sequence seen)
    jitter_ms: float
    jitter_ms_avg: float
    jitter_ms_max: float
    sources: int


class ReceiverStats:
    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.sources = 0
        # totals of finished sources
        self._done_received = 0
        self._done_expected = 0
        self.late = 0
        self.jitter = 0.0  # timestamp units
        self.jitter_max = 0.0
        self._jitter_sum = 0.0
        self._jitter_n = 0
        self._reset_source()

    def _reset_source(self) -> None:
        self.probation = MIN_SEQUENTIAL
        self.max_seq = 0
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._transit: float | None = None

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._transit = None

    def update(self, ssrc: int, seq: int, timestamp: int, arrival_s: float) -> str:
        """Account one packet (``arrival_s`` on any monotonic clock); returns its verdict.

        Only ``accept`` and ``restart`` packets carry audio the caller should hear next.
        """
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self._done_received += self.received
                self._done_expected += self._expected_now()
            self.ssrc = ssrc
            self.sources += 1
            self._reset_source()
            self.max_seq = (seq - 1) % RTP_SEQ_MOD
        verdict = self._update_seq(seq)
        if verdict in (ACCEPT, RESTART):
            self._update_jitter(timestamp, arrival_s)
        return verdict

    def _update_seq(self, seq: int) -> str:
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.base_seq = seq - (MIN_SEQUENTIAL - 1)  # count the probation packets
                    self.received = MIN_SEQUENTIAL
                    return ACCEPT
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return PROBATION
        if udelta == 0:
            self.late += 1  # duplicate of the newest packet
            return LATE
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # Two packets agree on a big jump: the sender restarted. Count the old stretch.
                self._done_received += self.received
                self._done_expected += self._expected_now()
                self._init_seq(seq)
                self.received = 1
                return RESTART
            self.bad_seq = (seq + 1) % RTP_SEQ_MOD
            return BAD_JUMP
        else:
            self.late += 1
            return LATE
        self.received += 1
        return ACCEPT

    def _update_jitter(self, timestamp: int, arrival_s: float) -> None:
        transit = arrival_s * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d > 1 << 31:  # timestamp wrapped between the two packets
                d = abs(d - (1 << 32))
            self.jitter += (d - self.jitter) / 16.0
            self.jitter_max = max(self.jitter_max, self.jitter)
            self._jitter_sum += self.jitter
            self._jitter_n += 1
        self._transit = transit

    def _expected_now(self) -> int:
        if self.probation:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def snapshot(self) -> Snapshot:
        received = self._done_received + (0 if self.probation else self.received)
        expected = self._done_expected + self._expected_now()
        ms = 1000.0 / self.clock_rate
        avg = self._jitter_sum / self._jitter_n if self._jitter_n else 0.0
        return Snapshot(received, expected, max(0, expected - received), self.late,
                        self.jitter * ms, avg * ms, self.jitter_max * ms, self.sources)

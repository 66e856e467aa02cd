"""Bounded retransmission (sender) and new-gap-only NACKs (receiver), as plain objects."""

from aiortc.rtp import RtpPacket

from media_engine.jitterbuffer import NewHoleNacks
from media_engine.retransmit import BUDGET_SHARE, BURST_S, RetransmitGuard


def test_the_same_packet_is_resent_at_most_once_per_round_trip():
    guard = RetransmitGuard()
    assert guard.allow(7, 1000, 1_000_000, now=10.0)
    assert not guard.allow(7, 1000, 1_000_000, now=10.05)  # within 100 ms
    assert guard.allow(7, 1000, 1_000_000, now=10.2)
    assert not guard.allow(7, 1000, 1_000_000, now=10.3, rtt_s=0.4)  # RTT longer: wait it
    assert guard.allow(8, 1000, 1_000_000, now=10.3)  # other packets are not held back


def test_retransmissions_stay_within_a_share_of_the_target():
    guard = RetransmitGuard()
    target = 400_000
    sent = sum(guard.allow(seq, 1200, target, now=5.0) for seq in range(200))
    # a burst of NACKs gets at most the bucket: BURST_S of the budget
    assert sent == int(BUDGET_SHARE * target / 8 * BURST_S // 1200)
    # then the budget refills at its rate, no faster
    later = sum(guard.allow(1000 + seq, 1200, target, now=6.0) for seq in range(200))
    assert later == sent and guard.refused > 300


def rtp(seq: int) -> RtpPacket:
    return RtpPacket(sequence_number=seq)


def test_a_new_gap_nacks_only_its_own_packets():
    nacks = NewHoleNacks()
    nacks.add(rtp(1))
    assert nacks.add(rtp(4)) and sorted(nacks.missing) == [2, 3]
    # stock aiortc would list 2 and 3 again with 6
    assert nacks.add(rtp(6)) and sorted(nacks.missing) == [5]
    assert not nacks.add(rtp(7))  # no new gap: no NACK
    nacks.add(rtp(3))  # a retransmission arrives
    assert nacks.outstanding == {2, 5}

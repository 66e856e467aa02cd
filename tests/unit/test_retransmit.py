"""Bounded retransmission (sender) and new-gap-only NACKs (receiver), as plain objects."""

from aiortc.rtp import RtpPacket

from media_engine.jitterbuffer import NewHoleNacks
from media_engine.retransmit import BUDGET_SHARE, BURST_S, COPY_RESERVE, RetransmitGuard


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


def test_a_new_gap_is_handed_out_once_for_its_second_nack():
    nacks = NewHoleNacks()
    nacks.add(rtp(1))
    nacks.add(rtp(4))
    assert nacks.take_fresh() == [2, 3]
    assert nacks.take_fresh() == []  # once
    nacks.add(rtp(5))
    assert nacks.take_fresh() == []  # no new gap


def test_a_copy_is_paid_from_the_same_budget():
    guard = RetransmitGuard()
    target = 400_000
    bucket = BUDGET_SHARE * target / 8 * BURST_S
    assert guard.allow(1, 1200, target, now=5.0)
    assert guard.allow_copy(1200, target, now=5.0) and guard.copies == 1
    sent = 2 + sum(guard.allow_copy(1200, target, now=5.0) for _ in range(200))
    assert sent == int(bucket * (1 - COPY_RESERVE) // 1200)  # copies: never the last half
    originals = sum(guard.allow(2 + seq, 1200, target, now=5.0) for seq in range(200))
    assert sent + originals == int(bucket // 1200)  # the originals get the rest


class Transport:
    """Where a real aiortc sender's retransmissions go (no network): their sequence numbers."""

    state = "connected"

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(RtpPacket.parse(data).sequence_number)


def sender_with_history(seqs) -> tuple:
    from aiortc import RTCRtpSender, VideoStreamTrack
    from aiortc.rtp import RTP_HISTORY_SIZE

    sender = RTCRtpSender(VideoStreamTrack(), Transport())
    history = sender._RTCRtpSender__rtp_history
    for seq in seqs:
        history[seq % RTP_HISTORY_SIZE] = RtpPacket(
            payload_type=96, sequence_number=seq, payload=b"x" * 1000
        )
    return sender, sender.transport


async def test_a_calm_path_gets_each_retransmission_twice_a_congested_one_once():
    import asyncio

    from media_engine.retransmit import COPY_AFTER_S, guard_retransmissions

    for calm, expected in ((True, [7, 7]), (False, [7])):
        sender, transport = sender_with_history([7])
        guard = guard_retransmissions(sender, calm=lambda calm=calm: calm)
        await sender._retransmit(7)
        await sender._retransmit(7)  # a second NACK at once: within the RTT, refused
        await asyncio.sleep(COPY_AFTER_S + 0.05)
        assert transport.sent == expected and guard.copies == len(expected) - 1


def test_the_retransmitted_rate_counts_originals_and_copies_over_the_last_window():
    from media_engine.retransmit import RATE_WINDOW_S

    guard = RetransmitGuard()
    assert guard.rate_bps(now=5.0) == 0.0
    assert guard.allow(1, 1000, 1_000_000, now=5.0)
    assert guard.allow_copy(1000, 1_000_000, now=5.0)
    assert not guard.allow(1, 1000, 1_000_000, now=5.01)  # refused: not counted
    assert guard.rate_bps(now=5.1) == 2000 * 8 / RATE_WINDOW_S
    assert guard.allow(2, 500, 1_000_000, now=5.3)
    assert guard.rate_bps(now=5.0 + RATE_WINDOW_S + 0.01) == 500 * 8 / RATE_WINDOW_S
    assert guard.rate_bps(now=6.0) == 0.0

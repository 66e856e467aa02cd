"""The receiver's bandwidth estimate, read from real aiortc senders' RTCP (no network)."""

import time

import aiortc
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCRtpCodecParameters,
    RTCRtpSender,
    VideoStreamTrack,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from media_engine import bandwidth
from media_engine.bandwidth import (
    LAN_BITRATE_BPS,
    START_BITRATE_BPS,
    receiver_estimate,
    watch_bandwidth,
)

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def make_sender() -> RTCRtpSender:
    ice = RTCIceTransport(RTCIceGatherer())
    dtls = RTCDtlsTransport(ice, [RTCCertificate.generateCertificate()])
    return RTCRtpSender(VideoStreamTrack(), dtls)


def remb(bitrate: int, ssrcs: list[int]) -> RtcpPsfbPacket:
    return RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
    )


def encoder_of(sender: RTCRtpSender):
    return sender._RTCRtpSender__encoder


def test_pinned_aiortc_still_hands_remb_to_the_sender():
    # The tap wraps these two methods; this fails when aiortc renames them.
    assert aiortc.__version__ == "1.16.0"
    assert callable(RTCRtpSender._handle_rtcp_packet)
    assert callable(RTCRtpSender._next_encoded_frame)


async def test_no_estimate_until_the_receiver_reports_then_its_report():
    sender = make_sender()
    watch_bandwidth(sender)
    assert receiver_estimate(sender) is None
    # the encoder exists with aiortc's 0.5 Mb/s default: that is not an estimate
    await sender._next_encoded_frame(VP8)
    assert receiver_estimate(sender) is None
    await sender._handle_rtcp_packet(remb(2_400_000, [sender._ssrc]))
    assert receiver_estimate(sender) == 2_400_000
    # the report is a ceiling, not a rate to jump to: the call's ramp has just begun
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS
    await sender._handle_rtcp_packet(remb(600_000, [sender._ssrc]))
    assert receiver_estimate(sender) == 600_000
    assert encoder_of(sender).target_bitrate == 600_000  # under the ramp: the report steers


async def test_reports_on_other_streams_and_other_rtcp_are_ignored():
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._handle_rtcp_packet(remb(300_000, [sender._ssrc ^ 1]))
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    )
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"junk")
    )
    assert receiver_estimate(sender) is None


async def test_the_encoder_starts_at_the_ramps_start_unless_the_receiver_spoke_first():
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._next_encoded_frame(VP8)
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS
    # a report always wins over the start rate
    early = make_sender()
    watch_bandwidth(early)
    await early._handle_rtcp_packet(remb(400_000, [early._ssrc]))
    await early._next_encoded_frame(VP8)
    assert encoder_of(early).target_bitrate == 400_000  # the report, not the start rate
    await early._handle_rtcp_packet(remb(400_000, [early._ssrc]))
    assert encoder_of(early).target_bitrate == 400_000


async def test_a_stale_report_is_no_estimate(monkeypatch):
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._handle_rtcp_packet(remb(2_000_000, [sender._ssrc]))
    estimate = sender._kiosk_receiver_estimate
    assert estimate.current(estimate.at + bandwidth.STALE_AFTER_S - 0.1) == 2_000_000
    assert estimate.current(estimate.at + bandwidth.STALE_AFTER_S + 0.1) is None


async def test_unwatched_senders_have_no_estimate():
    assert receiver_estimate(None) is None
    assert receiver_estimate(make_sender()) is None


async def test_watching_twice_wraps_once():
    sender = make_sender()
    watch_bandwidth(sender)
    handler = sender._handle_rtcp_packet
    watch_bandwidth(sender)
    assert sender._handle_rtcp_packet is handler


async def test_an_estimate_is_a_limit_only_while_it_is_under_what_we_send():
    sender = make_sender()
    watch_bandwidth(sender)
    estimate = sender._kiosk_receiver_estimate
    t = 1000.0

    def sent(octets: int, at: float) -> None:
        sender._RTCRtpSender__octet_count = octets
        estimate.sample_sent(octets, at)

    # we send 2 Mb/s and the receiver says 1.2: congestion, the estimate is the limit
    sent(0, t)
    sent(250_000, t + 1.0)
    assert estimate.sent_bps() == 2_000_000
    bandwidth.note_report(sender, estimate, remb(1_200_000, [sender._ssrc]), now=t + 1.0)
    assert estimate.limit(t + 1.0) == 1_200_000
    # the next report is over what we send: no longer a limit
    bandwidth.note_report(sender, estimate, remb(2_500_000, [sender._ssrc]), now=t + 1.1)
    assert estimate.limit(t + 1.1) is None
    # a sparse stream (20 kb/s): a low estimate (0.3 Mb/s) is no pressure
    sent(252_500, t + 3.0)
    sent(255_000, t + 4.0)
    assert estimate.sent_bps() == 20_000
    bandwidth.note_report(sender, estimate, remb(300_000, [sender._ssrc]), now=t + 4.0)
    assert estimate.limit(t + 4.0) is None
    # before we have measured what we send, no report is taken as congestion
    fresh = make_sender()
    watch_bandwidth(fresh)
    await fresh._handle_rtcp_packet(remb(100_000, [fresh._ssrc]))
    assert bandwidth.path_limit(fresh) is None and receiver_estimate(fresh) == 100_000


def receiver_report(ssrc: int, fraction_lost: float) -> RtcpRrPacket:
    info = RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=int(fraction_lost * 256),
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[info])


async def test_receiver_reports_of_heavy_loss_cut_the_encoder_and_limit_the_path(monkeypatch):
    clock = [500.0]
    monkeypatch.setattr(bandwidth.time, "monotonic", lambda: clock[0])
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._next_encoded_frame(VP8)
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS
    # a full drop-tail bottleneck: the REMB stays high, a third of the packets are lost
    await sender._handle_rtcp_packet(remb(1_500_000, [sender._ssrc]))
    await sender._handle_rtcp_packet(receiver_report(sender._ssrc, 0.33))
    first = encoder_of(sender).target_bitrate
    assert first < 0.85 * START_BITRATE_BPS
    clock[0] += 1.0
    await sender._handle_rtcp_packet(receiver_report(sender._ssrc, 0.33))
    assert encoder_of(sender).target_bitrate < first
    assert round(bandwidth.path_limit(sender)) == encoder_of(sender).target_bitrate
    # other streams' reports change nothing
    before = encoder_of(sender).target_bitrate
    clock[0] += 1.0
    await sender._handle_rtcp_packet(receiver_report(sender._ssrc ^ 1, 0.9))
    assert encoder_of(sender).target_bitrate == before
    # loss gone: it probes back up, and a later REMB still caps it
    for _ in range(3):
        clock[0] += 1.1
        await sender._handle_rtcp_packet(receiver_report(sender._ssrc, 0.0))
    assert encoder_of(sender).target_bitrate > before
    await sender._handle_rtcp_packet(remb(300_000, [sender._ssrc]))
    assert encoder_of(sender).target_bitrate == 300_000


async def test_keyframe_requests_are_served_at_most_every_300_ms(monkeypatch):
    clock = [500.0]
    monkeypatch.setattr(bandwidth.time, "monotonic", lambda: clock[0])
    sender = make_sender()
    watch_bandwidth(sender)
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    await sender._handle_rtcp_packet(pli)
    assert sender._RTCRtpSender__force_keyframe is True
    sender._RTCRtpSender__force_keyframe = False  # the encoder made it
    clock[0] += 0.1
    await sender._handle_rtcp_packet(pli)  # a storm of requests: skipped
    assert sender._RTCRtpSender__force_keyframe is False
    clock[0] += 0.25
    await sender._handle_rtcp_packet(pli)
    assert sender._RTCRtpSender__force_keyframe is True
    assert sender._kiosk_receiver_estimate.keyframes_skipped == 1


async def test_the_round_trip_comes_from_our_sender_reports_and_a_queue_cuts(monkeypatch):
    wall = [1000.0]
    monkeypatch.setattr(bandwidth.time, "time", lambda: wall[0])
    sender = make_sender()
    watch_bandwidth(sender)
    estimate = sender._kiosk_receiver_estimate
    from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

    def sr(ntp: int) -> RtcpSrPacket:
        info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=0, packet_count=0, octet_count=0)
        return RtcpSrPacket(ssrc=sender._ssrc, sender_info=info)

    def rr(lsr: int, dlsr_s: float) -> RtcpRrPacket:
        info = RtcpReceiverInfo(
            ssrc=sender._ssrc,
            fraction_lost=0,
            packets_lost=0,
            highest_sequence=0,
            jitter=0,
            lsr=lsr,
            dlsr=int(dlsr_s * 65536),
        )
        return RtcpRrPacket(ssrc=1, reports=[info])

    sent = sr(5 << 32)
    bandwidth.note_sender_report(estimate, sent)
    lsr = ((5 << 32) >> 16) & 0xFFFFFFFF
    wall[0] += 0.5 + 0.04  # held 0.5 s by the receiver, 40 ms on the path
    bandwidth.note_losses(estimate, sender._ssrc, rr(lsr, 0.5), now=10.0)
    assert abs(estimate.rate.min_rtt_s - 0.04) < 0.002
    assert estimate.rate.loss_bps == START_BITRATE_BPS
    bandwidth.note_sender_report(estimate, sr(6 << 32))
    wall[0] += 0.5 + 0.3  # 300 ms: a queue built up
    bandwidth.note_losses(estimate, sender._ssrc, rr(((6 << 32) >> 16) & 0xFFFFFFFF, 0.5), 11.0)
    assert estimate.rate.queued_reports == 1 and estimate.rate.loss_bps == START_BITRATE_BPS
    bandwidth.note_sender_report(estimate, sr(7 << 32))
    wall[0] += 0.5 + 0.3  # and again: a standing queue
    bandwidth.note_losses(estimate, sender._ssrc, rr(((7 << 32) >> 16) & 0xFFFFFFFF, 0.5), 12.0)
    assert estimate.rate.queued and estimate.rate.loss_bps < START_BITRATE_BPS


async def test_clean_reports_ramp_the_encoder_to_a_lans_rate_without_pressure(monkeypatch):
    clock = [500.0]
    monkeypatch.setattr(bandwidth.time, "monotonic", lambda: clock[0])
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._next_encoded_frame(VP8)
    assert START_BITRATE_BPS < LAN_BITRATE_BPS
    targets = []
    for _ in range(6):
        clock[0] += 1.0
        await sender._handle_rtcp_packet(receiver_report(sender._ssrc, 0.0))
        targets.append(encoder_of(sender).target_bitrate)
    assert targets == [700_000, 875_000, 1_093_750, 1_367_187, LAN_BITRATE_BPS, LAN_BITRATE_BPS]
    assert bandwidth.path_limit(sender) is None  # a ramp is no pressure for the ladder


async def test_a_report_of_loss_ends_the_ramp_and_the_rate_holds(monkeypatch):
    clock = [500.0]
    monkeypatch.setattr(bandwidth.time, "monotonic", lambda: clock[0])
    sender = make_sender()
    watch_bandwidth(sender)
    await sender._next_encoded_frame(VP8)
    for lost in (0.0, 0.0, 0.05, 0.0):
        clock[0] += 0.5
        await sender._handle_rtcp_packet(receiver_report(sender._ssrc, lost))
    # 0.7 -> 0.875 Mb/s, then 5 % loss: one step back and x 0.85, held (within a second)
    assert encoder_of(sender).target_bitrate == int(START_BITRATE_BPS * 0.85)
    assert bandwidth.path_limit(sender) is None


async def test_retransmissions_are_copied_on_a_calm_path_but_not_for_a_burst_nack():
    from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

    sender = make_sender()
    watch_bandwidth(sender)
    estimate = sender._kiosk_receiver_estimate
    assert estimate.copies_due(time.monotonic())  # calm, no NACK yet

    def nack(lost: list[int]) -> RtcpRtpfbPacket:
        return RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=lost)

    await sender._handle_rtcp_packet(nack([5]))
    assert estimate.copies_due(time.monotonic())
    await sender._handle_rtcp_packet(nack(list(range(40))))  # a blackout's backlog
    assert not estimate.copies_due(time.monotonic())
    await sender._handle_rtcp_packet(receiver_report(sender._ssrc, 0.3))  # heavy loss
    assert not estimate.copies_due(time.monotonic())


async def test_retransmissions_take_their_rate_from_the_media_until_they_stop():
    import asyncio

    from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

    from media_engine.retransmit import RATE_WINDOW_S
    from tests.unit.test_retransmit import sender_with_history

    sender, transport = sender_with_history(range(100, 120))  # 20 packets of 1,012 B
    watch_bandwidth(sender)
    await sender._next_encoded_frame(VP8)
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS
    nack = RtcpRtpfbPacket(
        fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=list(range(100, 120))
    )
    await sender._handle_rtcp_packet(nack)  # a burst: no copies
    assert len(transport.sent) == 20
    resent = 20 * 1012 * 8 / RATE_WINDOW_S  # 324 kb/s over the window
    step = bandwidth.PROTECTION_STEP_BPS
    protection = step * -(-resent // step)
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS - protection
    await asyncio.sleep(RATE_WINDOW_S + 0.05)
    await sender._next_encoded_frame(VP8)  # the next frame gets the media's share back
    assert encoder_of(sender).target_bitrate == START_BITRATE_BPS


async def test_the_media_keeps_the_controllers_floor_under_a_retransmission_burst():
    from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

    from media_engine import ratecontrol
    from tests.unit.test_retransmit import sender_with_history

    sender, _ = sender_with_history(range(100, 140))
    watch_bandwidth(sender, start_bps=300_000)
    await sender._next_encoded_frame(VP8)
    nack = RtcpRtpfbPacket(
        fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc, lost=list(range(100, 140))
    )
    await sender._handle_rtcp_packet(nack)
    assert encoder_of(sender).target_bitrate == ratecontrol.RatePolicy.min_bps

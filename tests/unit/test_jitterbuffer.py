"""The complete-frame release: loss, reordering, wraparound, lost marker, padding; the pin."""

import hashlib
import inspect

import pytest
from aiortc import RTCPeerConnection, jitterbuffer, rtcrtpreceiver, rtcrtpsender
from aiortc.codecs import h264, vpx
from aiortc.rtp import RtpPacket

from media_engine.jitterbuffer import (
    PINNED_AIORTC_VERSION,
    CompleteFrameJitterBuffer,
    UnsupportedAiortc,
    install_complete_frame_release,
    is_vp8_keyframe,
    require_pinned_aiortc,
)

# sha256 of inspect.getsource(...) in aiortc 1.16.0 for everything that
# media_engine/jitterbuffer.py and media_engine/rtptime.py rely on. When aiortc changes any
# of it, this test fails: read the new source, port the patches, then update the hashes.
AIORTC_SOURCE_PINS = {
    "JitterBuffer": (
        jitterbuffer.JitterBuffer,
        "17030fbb0982258d8d61611500b707370579994f222fae610c353c5de5b1ed59",
    ),
    "JitterFrame": (
        jitterbuffer.JitterFrame,
        "387bd33b13a7f10aa2eb3d751b912e2280735572bd300c63f8d88a43f8f1c7b3",
    ),
    "RTCRtpReceiver.__init__": (
        rtcrtpreceiver.RTCRtpReceiver.__init__,
        "3e3b7b5cefbaac6f32d31c024a5ecf70093b55e60db6a3b4f4f900400688ccb9",
    ),
    "RTCRtpReceiver._handle_rtp_packet": (
        rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet,
        "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238",
    ),
    "TimestampMapper": (
        rtcrtpreceiver.TimestampMapper,
        "3b51df64452ee962c778590051f6f8fc6a72130357e69b49f228cc274ee8fc76",
    ),
    "RTCRtpSender._run_rtp": (
        rtcrtpsender.RTCRtpSender._run_rtp,
        "ff597a1d554cb373e73b21775c5bf564e7dba1eab6058eeabd902e09794872a3",
    ),
    "Vp8Decoder.decode": (
        vpx.Vp8Decoder.decode,
        "df0b00983f46f74cdf70203dd866e55d00e3474ce6f496a6ae397f6a2a35afe4",
    ),
    "Vp8Encoder.encode": (
        vpx.Vp8Encoder.encode,
        "db5835280680a32568e435a5e0d3297def3ffcffc296a17ee5138b063dfdb484",
    ),
    "H264Decoder.decode": (
        h264.H264Decoder.decode,
        "acd288dc4772351b9e7a288eb26d838737f8acb0637ecaab81912a55d521caa7",
    ),
    "H264Encoder.encode": (
        h264.H264Encoder.encode,
        "86e077dcf87c9efadea39dd53b97301482c8d28f33b4f163c5ece7fbf0c2650c",
    ),
}


@pytest.mark.parametrize("name", sorted(AIORTC_SOURCE_PINS))
def test_aiortc_source_that_the_patches_rely_on_is_unchanged(name):
    obj, expected = AIORTC_SOURCE_PINS[name]
    actual = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()
    assert actual == expected, (
        f"aiortc's {name} changed: "
        "media_engine/jitterbuffer.py and media_engine/rtptime.py must be ported"
    )


def test_installed_aiortc_is_the_pinned_version():
    require_pinned_aiortc()


def test_another_aiortc_version_is_refused_with_a_clear_error():
    with pytest.raises(UnsupportedAiortc, match=r"aiortc==1\.16\.0.*1\.17\.0 is installed"):
        require_pinned_aiortc("1.17.0")
    assert PINNED_AIORTC_VERSION == "1.16.0"


def packet(seq: int, ts: int, *, marker: bool = False, data: bytes | None = None) -> RtpPacket:
    p = RtpPacket(sequence_number=seq & 0xFFFF, timestamp=ts, marker=int(marker))
    p._data = data if data is not None else f"{seq}|".encode()
    return p


def frame_packets(first_seq: int, ts: int, count: int) -> list[RtpPacket]:
    """One frame of ``count`` packets, the last with the marker bit."""
    return [packet(first_seq + i, ts, marker=(i == count - 1)) for i in range(count)]


def feed(buffer, packets):
    """Add packets in order; return the frames released, as (timestamp, data)."""
    released = []
    for p in packets:
        _, frame = buffer.add(p)
        if frame is not None:
            released.append((frame.timestamp, frame.data))
    return released


def data_of(packets) -> bytes:
    return b"".join(p._data for p in packets)


def test_a_frame_is_released_at_its_marker_packet_not_at_the_next_frame():
    buffer = CompleteFrameJitterBuffer()
    first = frame_packets(100, 3000, 3)
    assert feed(buffer, first[:2]) == []
    assert feed(buffer, first[2:]) == [(3000, data_of(first))]
    second = frame_packets(103, 6000, 2)
    assert feed(buffer, second) == [(6000, data_of(second))]
    assert buffer.frames_at_marker == 2


def test_the_stock_buffer_waits_for_the_next_frame():
    # What the patch fixes: the stock buffer holds a complete frame back a whole frame.
    stock = jitterbuffer.JitterBuffer(capacity=512, is_video=True)
    first = frame_packets(100, 3000, 3)
    assert feed(stock, first) == []
    assert feed(stock, frame_packets(103, 6000, 1)) == [(3000, data_of(first))]


def test_reordered_packets_release_the_frame_when_the_last_hole_fills():
    buffer = CompleteFrameJitterBuffer()
    feed(buffer, frame_packets(10, 0, 1))  # the origin: frame before
    p = frame_packets(11, 3000, 4)
    # marker first, then the middle, then the first packet
    assert feed(buffer, [p[3], p[2], p[0]]) == []
    assert feed(buffer, [p[1]]) == [(3000, data_of(p))]


def test_a_lost_packet_holds_the_frame_until_it_is_retransmitted():
    buffer = CompleteFrameJitterBuffer()
    feed(buffer, frame_packets(10, 0, 1))
    p = frame_packets(11, 3000, 3)
    q = frame_packets(14, 6000, 2)
    assert feed(buffer, [p[0], p[2]]) == []  # p[1] lost: not complete
    assert feed(buffer, q) == []  # the next frame must not overtake it
    # the retransmission completes the first frame, which comes out first
    assert feed(buffer, [p[1]]) == [(3000, data_of(p))]
    # the next packet to arrive lets the already complete second frame out too
    r = frame_packets(16, 9000, 1)
    assert feed(buffer, r) == [(6000, data_of(q))]


def test_a_lost_marker_packet_falls_back_to_the_stock_rule_when_retransmitted_late():
    buffer = CompleteFrameJitterBuffer()
    feed(buffer, frame_packets(10, 0, 1))
    p = frame_packets(11, 3000, 3)
    assert feed(buffer, p[:2]) == []  # marker packet lost
    q = frame_packets(14, 6000, 2)
    assert feed(buffer, q) == []  # gap at 13: nothing may be released
    assert feed(buffer, [p[2]]) == [(3000, data_of(p))]
    assert feed(buffer, frame_packets(16, 9000, 1)) == [(6000, data_of(q))]


def test_a_sender_without_marker_bits_gets_the_stock_rule():
    buffer = CompleteFrameJitterBuffer()
    a = [packet(20, 3000), packet(21, 3000)]
    b = [packet(22, 6000), packet(23, 6000)]
    assert feed(buffer, a) == []
    assert feed(buffer, b[:1]) == [(3000, data_of(a))]
    assert buffer.frames_at_next_frame == 1


def test_sequence_numbers_wrap_around():
    buffer = CompleteFrameJitterBuffer()
    frames = []
    seq = 65530
    released = []
    for n in range(6):
        packets = frame_packets(seq, 3000 * n, 3)
        frames.append(packets)
        released += feed(buffer, packets)
        seq = (seq + 3) & 0xFFFF
    assert released == [(3000 * n, data_of(frames[n])) for n in range(6)]


def test_wraparound_with_reordering_across_the_wrap():
    buffer = CompleteFrameJitterBuffer()
    feed(buffer, frame_packets(65533, 0, 1))
    p = frame_packets(65534, 3000, 4)  # 65534, 65535, 0, 1 (marker)
    assert [x.sequence_number for x in p] == [65534, 65535, 0, 1]
    assert feed(buffer, [p[3], p[0], p[2]]) == []
    assert feed(buffer, [p[1]]) == [(3000, data_of(p))]


def test_padding_only_frames_are_dropped():
    buffer = CompleteFrameJitterBuffer()
    media = frame_packets(30, 3000, 2)
    assert feed(buffer, media) == [(3000, data_of(media))]
    padding = [packet(32, 3000, data=b""), packet(33, 3000, data=b"")]
    assert feed(buffer, padding) == []
    nxt = frame_packets(34, 6000, 2)
    # the padding run ends at the next frame (stock rule) and is dropped, not released
    assert feed(buffer, nxt[:1]) == []
    assert buffer.empty_frames_dropped == 1
    assert feed(buffer, nxt[1:]) == [(6000, data_of(nxt))]


def test_a_padding_packet_with_the_marker_bit_is_dropped_too():
    buffer = CompleteFrameJitterBuffer()
    assert feed(buffer, [packet(40, 3000, marker=True, data=b"")]) == []
    assert buffer.empty_frames_dropped == 1


def test_late_packets_of_a_released_frame_are_ignored():
    buffer = CompleteFrameJitterBuffer()
    p = frame_packets(50, 3000, 2)
    assert feed(buffer, p) == [(3000, data_of(p))]
    assert feed(buffer, [p[0]]) == []  # a duplicate from before the origin
    q = frame_packets(52, 6000, 1)
    assert feed(buffer, q) == [(6000, data_of(q))]


KEY = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01"  # a VP8 keyframe's header (640x480)
DELTA = b"\x31\x02\x00" + b"\x00" * 7  # a delta frame: frame tag bit 0 set


def test_vp8_keyframes_are_told_from_delta_frames_and_cut_frames():
    assert is_vp8_keyframe(KEY + b"payload")
    assert not is_vp8_keyframe(DELTA)
    assert not is_vp8_keyframe(KEY[1:] + b"payload")  # its first packet lost
    assert not is_vp8_keyframe(b"")


def test_capacity_overflow_asks_for_a_keyframe_and_drops_frames_until_one():
    buffer = CompleteFrameJitterBuffer(capacity=16)
    feed(buffer, frame_packets(0, 0, 1))
    feed(buffer, [packet(1, 3000)])  # the rest of this frame never arrives
    pli, frame = buffer.add(packet(40, 9000, marker=True, data=DELTA))
    assert pli is True
    assert frame is None  # it refers to frames the overflow dropped
    assert buffer.frames_without_reference == 1
    pli, frame = buffer.add(packet(41, 12000, marker=True, data=KEY))
    assert frame is not None and frame.timestamp == 12000
    assert not buffer.awaiting_keyframe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_hole_is_nacked_again_then_given_up_for_a_keyframe():
    clock = Clock()
    buffer = CompleteFrameJitterBuffer(clock=clock)
    feed(buffer, frame_packets(10, 0, 1))
    p = [packet(11, 3000, data=DELTA), packet(12, 3000), packet(13, 3000, marker=True)]
    assert feed(buffer, [p[0], p[2]]) == []  # 12 lost, and its retransmission too
    assert buffer.missing() == [12]
    assert not buffer.renack_due()
    clock.now += 0.15
    assert buffer.renack_due()  # NACK 12 again
    assert not buffer.renack_due()  # not on every packet
    # later frames wait behind the hole, but not without bound
    assert feed(buffer, [packet(14, 6000, marker=True, data=DELTA)]) == []
    clock.now += 0.2
    pli, frame = buffer.add(packet(15, 9000, marker=True, data=DELTA))
    assert pli is True and frame is None  # given up: a keyframe is asked for
    assert buffer.gaps_given_up == 1 and buffer.frames_without_reference >= 1
    # a delta frame still has no reference; no second request within 300 ms
    pli, frame = buffer.add(packet(16, 12000, marker=True, data=DELTA))
    assert pli is False and frame is None
    clock.now += 0.31
    pli, frame = buffer.add(packet(17, 15000, marker=True, data=DELTA))
    assert pli is True and frame is None  # asked again while waiting
    _, frame = buffer.add(packet(18, 18000, marker=True, data=KEY))
    assert frame is not None and frame.timestamp == 18000
    _, frame = buffer.add(packet(19, 21000, marker=True, data=DELTA))
    assert frame is not None and frame.timestamp == 21000  # decodable again


def test_a_frame_still_arriving_is_not_a_hole():
    clock = Clock()
    buffer = CompleteFrameJitterBuffer(clock=clock)
    feed(buffer, frame_packets(10, 0, 1))
    assert feed(buffer, [packet(11, 3000), packet(12, 3000)]) == []
    clock.now += 1.0
    assert not buffer.renack_due()
    assert feed(buffer, [packet(13, 3000, marker=True)]) != []
    assert buffer.gaps_given_up == 0


async def test_install_replaces_the_video_receivers_buffer_only():
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video")
        audio = pc.addTransceiver("audio")
        buffer = install_complete_frame_release(video.receiver)
        assert isinstance(buffer, CompleteFrameJitterBuffer)
        assert video.receiver._RTCRtpReceiver__jitter_buffer is buffer
        # idempotent
        assert install_complete_frame_release(video.receiver) is buffer
        with pytest.raises(ValueError, match="video receivers only"):
            install_complete_frame_release(audio.receiver)
    finally:
        await pc.close()


def test_frames_queued_behind_a_repaired_hole_come_out_at_once():
    buffer = CompleteFrameJitterBuffer()
    feed(buffer, frame_packets(10, 0, 1))
    p = frame_packets(11, 3000, 2)
    later = [frame_packets(13 + i, 6000 + 3000 * i, 1) for i in range(3)]
    assert feed(buffer, [p[1]] + [x[0] for x in later]) == []  # 11 lost
    assert feed(buffer, [p[0]]) == [(3000, data_of(p))]  # the retransmission
    # aiortc takes one frame per packet; the receiver drains the rest right away
    drained = []
    while (frame := buffer.next_frame()) is not None:
        drained.append((frame.timestamp, frame.data))
    assert drained == [(6000 + 3000 * i, data_of(later[i])) for i in range(3)]


def test_an_awaited_keyframe_with_a_hole_is_repaired_not_requested_again():
    clock = Clock()
    buffer = CompleteFrameJitterBuffer(clock=clock)
    feed(buffer, frame_packets(10, 0, 1))
    buffer.add(packet(12, 3000, marker=True, data=DELTA))  # 11 lost for good
    clock.now += 0.35
    pli, _ = buffer.add(packet(13, 6000, marker=True, data=DELTA))
    assert pli is True and buffer.awaiting_keyframe  # given up, a keyframe asked for
    # the keyframe arrives with its middle packet dropped at the bottleneck
    key = [packet(14, 9000, data=KEY), packet(15, 9000), packet(16, 9000, marker=True)]
    feed(buffer, [key[0], key[2], packet(17, 12000, marker=True, data=DELTA)])
    clock.now += 0.5  # past MAX_GAP_WAIT_S: a delta frame would be given up by now
    pli, frame = buffer.add(packet(18, 15000, marker=True, data=DELTA))
    assert pli is False and frame is None  # no new request while it is repaired
    _, frame = buffer.add(key[1])  # the retransmission
    assert frame is not None and frame.timestamp == 9000
    assert buffer.gaps_given_up == 1

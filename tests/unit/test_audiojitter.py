"""The prompt audio release (media_engine/audiojitter.py) against aiortc's stock audio buffer."""

import hashlib
import inspect

import pytest
from aiortc import jitterbuffer, rtcrtpreceiver
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from media_engine.audiojitter import PromptAudioJitterBuffer, install_prompt_audio_release

# sha256 of inspect.getsource(...) in aiortc 1.16.0 for what audiojitter.py relies on (the
# same pins as tests/unit/test_jitterbuffer.py): port the buffer when these change.
PINS = {
    "JitterBuffer": (
        jitterbuffer.JitterBuffer,
        "17030fbb0982258d8d61611500b707370579994f222fae610c353c5de5b1ed59",
    ),
    "RTCRtpReceiver.__init__": (
        rtcrtpreceiver.RTCRtpReceiver.__init__,
        "3e3b7b5cefbaac6f32d31c024a5ecf70093b55e60db6a3b4f4f900400688ccb9",
    ),
    "RTCRtpReceiver._handle_rtp_packet": (
        rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet,
        "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238",
    ),
}


@pytest.mark.parametrize("name", sorted(PINS))
def test_aiortc_source_the_audio_buffer_relies_on_is_unchanged(name):
    obj, expected = PINS[name]
    assert hashlib.sha256(inspect.getsource(obj).encode()).hexdigest() == expected


def opus(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=seq * 960)
    packet._data = bytes([seq % 256])
    return packet


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def released_after(buffer, order: list[int], clock: Clock | None = None) -> dict[int, int]:
    """{sequence number: index of the arrival at which it was released}."""
    out = {}
    for i, seq in enumerate(order):
        if clock is not None:
            clock.now = i * 0.020
        _, frame = buffer.add(opus(seq))
        if frame is not None:
            out[frame.timestamp // 960] = i
    return out


def test_the_stock_audio_buffer_holds_each_packet_until_the_fourth_after_it():
    """Where 80 of the voice's milliseconds went: aiortc's audio receivers prefetch 4."""
    stock = jitterbuffer.JitterBuffer(capacity=16, prefetch=4)
    released = released_after(stock, list(range(100, 120)))
    assert released[100] == 4  # 4 packets x 20 ms later
    assert all(at - (seq - 100) == 4 for seq, at in released.items())


def test_each_packet_is_released_on_its_own_arrival_and_its_wait_is_zero():
    clock = Clock()
    buffer = PromptAudioJitterBuffer(clock=clock)
    released = released_after(buffer, list(range(65530, 65550)), clock)  # wraps around
    assert released == {seq: seq - 65530 for seq in range(65530, 65550)}
    assert buffer.held_ms() == 0.0
    assert buffer.gaps_skipped == 0


def test_a_lost_packet_is_skipped_at_once_and_a_late_one_dropped():
    buffer = PromptAudioJitterBuffer()
    released = released_after(buffer, [10, 11, 13, 14, 12, 15])
    assert released == {10: 0, 11: 1, 13: 2, 14: 3, 15: 5}  # 12 came too late
    assert buffer.gaps_skipped == 1


def test_a_reorder_allowance_waits_one_packet_and_measures_the_wait():
    clock = Clock()
    buffer = PromptAudioJitterBuffer(reorder_packets=1, clock=clock)
    released = released_after(buffer, [10, 11, 13, 12, 14, 16, 17, 18], clock)
    assert released[12] == 3  # waited for while 13 stood behind the gap
    assert released[13] == 4  # the backlog: one packet per arrival
    assert 15 not in released and released[16] == 6  # skipped after two later packets
    assert buffer.held_ms() == pytest.approx(20.0)  # median wait: one packet interval


async def test_only_audio_receivers_before_media_get_it():
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    try:
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        video = pc.addTransceiver("video", direction="recvonly").receiver
        buffer = install_prompt_audio_release(audio)
        assert isinstance(buffer, PromptAudioJitterBuffer)
        assert install_prompt_audio_release(audio) is buffer
        assert isinstance(audio, RTCRtpReceiver)
        with pytest.raises(ValueError):
            install_prompt_audio_release(video)
    finally:
        await pc.close()

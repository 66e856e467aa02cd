"""Release each video frame as soon as it is complete (aiortc's jitter buffer waits a frame).

aiortc's video jitter buffer hands a frame to the decoder only when the first packet of the
*next* frame arrives: one frame interval (33 ms at 30 fps) on every hop, about 66 of the 80 ms
an aiortc echo takes on loopback (``docs/architecture.md``). ``CompleteFrameJitterBuffer``
releases a frame as soon as

- its marker-bit packet (the frame's last packet) has arrived, and
- every sequence number from the frame's first packet (the buffer's origin, right after the
  previous frame was released) up to that marker packet is present.

Everything else is aiortc's stock rule, kept as it is: when the marker packet is lost the frame
is released when the next frame's first packet follows it without a gap (or when a NACKed
retransmission fills the hole), capacity overflow drops whole frames and asks for a keyframe,
late packets before the origin are dropped. Frames assembled only from padding packets (empty
payloads, sent by Chromium when RTX is not negotiated) are dropped instead of being decoded:
an empty frame makes the VP8 decoder end the stream.

The buffer is installed per receiver (``install_complete_frame_release``), so a process can
hold stock and patched peers side by side (``bench/latency.py`` runs the stock echo as its
baseline). The install reaches into private attributes of ``RTCRtpReceiver`` and is written
for exactly ``aiortc==1.16.0``: it refuses any other version, and
``tests/unit/test_jitterbuffer.py`` pins the source of every aiortc function it relies on.
"""

import aiortc
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

PINNED_AIORTC_VERSION = "1.16.0"
# aiortc's own choice for video receivers (rtcrtpreceiver.py).
VIDEO_CAPACITY = 512


class UnsupportedAiortc(RuntimeError):
    """The installed aiortc is not the version the media engine's patches were written for."""


def require_pinned_aiortc(version: str | None = None) -> None:
    """Raise ``UnsupportedAiortc`` unless aiortc is the pinned version."""
    actual = version if version is not None else aiortc.__version__
    if actual != PINNED_AIORTC_VERSION:
        raise UnsupportedAiortc(
            f"media_engine patches aiortc's jitter buffer and RTP timestamps and is written for "
            f"aiortc=={PINNED_AIORTC_VERSION}, but aiortc {actual} is installed: install "
            f"aiortc=={PINNED_AIORTC_VERSION} (pyproject.toml) or port media_engine/"
            f"jitterbuffer.py and media_engine/rtptime.py and update their source pins"
        )


class CompleteFrameJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` that also releases a frame at its complete marker packet."""

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)
        self.frames_at_marker = 0
        self.frames_at_next_frame = 0
        self.empty_frames_dropped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None and not frame.data:
            self.empty_frames_dropped += 1
            frame = None
        return pli_flag, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        # Walk the contiguous packets from the origin (the first packet after the last
        # released frame). The stock buffer does the same walk but only ever ends a frame
        # at a timestamp change.
        packets: list[RtpPacket] = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait (retransmission, or the stock overflow rule)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # Stock rule: the next frame has begun right after this one.
                self.frames_at_next_frame += 1
                return self._release(packets, count, timestamp)
            packets.append(packet)
            if packet.marker:
                # Complete: first packet .. marker packet, no gap.
                self.frames_at_marker += 1
                return self._release(packets, count + 1, timestamp)
        return None

    def _release(self, packets: list[RtpPacket], count: int, timestamp: int) -> JitterFrame:
        frame = JitterFrame(
            data=b"".join(p._data for p in packets),  # type: ignore[attr-defined]
            timestamp=timestamp,
        )
        self.remove(count)
        return frame


def install_complete_frame_release(receiver: RTCRtpReceiver) -> CompleteFrameJitterBuffer:
    """Give a video ``RTCRtpReceiver`` the complete-frame release; returns the new buffer.

    Call it before media flows (e.g. right after ``setRemoteDescription``, or in the peer
    connection's ``track`` handler). Audio receivers are refused: their buffer prefetches.
    """
    require_pinned_aiortc()
    if receiver._RTCRtpReceiver__kind != "video":  # type: ignore[attr-defined]
        raise ValueError("the complete-frame release is for video receivers only")
    current = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    if isinstance(current, CompleteFrameJitterBuffer):
        return current
    if current._origin is not None:
        raise RuntimeError("install the complete-frame release before media flows")
    buffer = CompleteFrameJitterBuffer(capacity=current.capacity)
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return buffer

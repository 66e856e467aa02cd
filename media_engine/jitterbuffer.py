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

On a lossy or reordering path the buffer never waits without bound and never hands the
decoder a frame whose reference is missing (libwebrtc's frame buffer does the same):

- a new gap is NACKed for its own packets (``NewHoleNacks``), twice at once (a lost NACK
  would cost a re-NACK round), and a hole at the origin (a missing packet with later
  packets present) is NACKed again every ``RENACK_EVERY_S`` (aiortc NACKs a hole once,
  when it appears; a lost NACK or a lost retransmission would leave it open);
- after ``MAX_GAP_WAIT_S`` the hole is given up: the buffer skips to the first packet after
  it and, since every VP8 delta frame refers to the one before, drops every frame until a
  keyframe, asking for one (PLI) at once and again every ``KEYFRAME_REQUEST_EVERY_S`` while
  it waits; an awaited keyframe that has begun to arrive gets ``KEYFRAME_GAP_WAIT_S`` for its
  repairs, without new requests (on a narrow link a keyframe's tail is often dropped, and
  asking for another as big only repeats that). aiortc's own overflow and misorder
  resets, which also drop frames, start the same wait. Without this a lost retransmission
  stalled the picture until 512 packets had piled up (seconds), and the frames after a
  dropped one failed to decode.

The buffer is installed per receiver (``install_complete_frame_release``), so a process can
hold stock and patched peers side by side (``bench/latency.py`` runs the stock echo as its
baseline). The install reaches into private attributes of ``RTCRtpReceiver`` and is written
for exactly ``aiortc==1.16.0``: it refuses any other version, and
``tests/unit/test_jitterbuffer.py`` pins the source of every aiortc function it relies on.
"""

import time
from collections.abc import Callable
from typing import Any, TypeVar

import aiortc
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

BufferT = TypeVar("BufferT", bound=JitterBuffer)

PINNED_AIORTC_VERSION = "1.16.0"
# aiortc's own choice for video receivers (rtcrtpreceiver.py).
VIDEO_CAPACITY = 512
# A hole at the origin is NACKed again this often, and given up (skip, wait for a keyframe)
# after MAX_GAP_WAIT_S; while waiting for a keyframe, one is asked for this often.
RENACK_EVERY_S = 0.1
MAX_GAP_WAIT_S = 0.3
KEYFRAME_REQUEST_EVERY_S = 0.3
# A keyframe that has begun to arrive, while one is awaited, is waited for this long: on a
# narrow link its tail is often dropped and comes back by retransmission.
KEYFRAME_GAP_WAIT_S = 1.0


def is_vp8_keyframe(data: bytes) -> bool:
    """A whole VP8 keyframe: frame tag bit 0 clear and the start code 9d 01 2a (RFC 6386
    9.1); a frame cut at its start fails the start code."""
    return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"


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


class NewHoleNacks(NackGenerator):
    """aiortc's NACK generator, but a new gap NACKs only its own packets: stock aiortc
    re-lists every packet still missing on each new gap, a retransmission storm on a lossy
    link. Older holes are NACKed again by the buffer's own schedule (``renack_due``)."""

    def __init__(self) -> None:
        super().__init__()
        self.outstanding: set[int] = set()
        self._nacked: set[int] = set()
        self.fresh: set[int] = set()  # NACKed by aiortc for this packet: to NACK once more

    def add(self, packet: RtpPacket) -> bool:
        self.missing = self.outstanding
        super().add(packet)
        self.outstanding = self.missing
        new = self.outstanding - self._nacked
        self._nacked = (self._nacked | new) & self.outstanding
        self.missing = new  # what aiortc's receiver NACKs now
        self.fresh = set(new)
        return bool(new)

    def take_fresh(self) -> list[int]:
        """The new gap's packets, once: the receiver NACKs them a second time."""
        fresh, self.fresh = sorted(self.fresh), set()
        return fresh


class CompleteFrameJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` that also releases a frame at its complete marker packet."""

    def __init__(
        self,
        capacity: int = VIDEO_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        is_keyframe: Callable[[bytes], bool] = is_vp8_keyframe,
    ) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)
        self.clock = clock
        self.is_keyframe = is_keyframe
        self.frames_at_marker = 0
        self.frames_at_next_frame = 0
        self.empty_frames_dropped = 0
        self.highest: int | None = None  # the highest sequence number seen
        self.ssrc: int | None = None
        self.payload_type: int | None = None
        self.blocked_since: float | None = None  # a hole at the origin, since when
        self.nacked_at: float | None = None
        self.awaiting_keyframe = False
        self.keyframe_asked_at: float | None = None
        self.gaps_given_up = 0
        self.frames_without_reference = 0  # dropped while waiting for a keyframe

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.ssrc, self.payload_type = packet.ssrc, packet.payload_type
        if self.highest is None or uint16_gt(packet.sequence_number, self.highest):
            self.highest = packet.sequence_number
        pli_flag, frame = super().add(packet)
        if pli_flag:  # aiortc dropped frames (overflow, misorder reset)
            self.awaiting_keyframe = True
        if frame is None and self._blocked_too_long():
            self._give_up_hole()
            frame = self._remove_frame(packet.sequence_number)
        # A frame dropped here (padding, no reference) does not count as one released:
        # release the next complete one in the same call, so that no backlog builds up.
        decodable = self._decodable(frame)
        for _ in range(self.capacity):
            if frame is None or decodable is not None:
                break
            frame = self._remove_frame(packet.sequence_number)
            decodable = self._decodable(frame)
        return self._keyframe_request_due() or pli_flag, decodable

    def next_frame(self) -> JitterFrame | None:
        """The next decodable frame already complete in the buffer, if any (after ``add``
        released one: frames queued behind a repaired hole)."""
        if self._origin is None or self.highest is None:
            return None
        for _ in range(self.capacity):
            frame = self._remove_frame(self.highest)
            if frame is None:
                return None
            decodable = self._decodable(frame)
            if decodable is not None:
                return decodable
        return None

    def renack_due(self) -> bool:
        """A hole at the origin has waited another ``RENACK_EVERY_S``: NACK it again."""
        if self.blocked_since is None:
            return False
        now = self.clock()
        last = self.nacked_at if self.nacked_at is not None else self.blocked_since
        if now - last < RENACK_EVERY_S:
            return False
        self.nacked_at = now
        return True

    def _decodable(self, frame: JitterFrame | None) -> JitterFrame | None:
        if frame is None:
            return None
        if not frame.data:
            self.empty_frames_dropped += 1
            return None
        if self.awaiting_keyframe:
            if not self.is_keyframe(frame.data):
                self.frames_without_reference += 1
                return None
            self.awaiting_keyframe = False
        return frame

    def _keyframe_request_due(self) -> bool:
        if not self.awaiting_keyframe or self._repairing_keyframe():
            return False
        now = self.clock()
        asked = self.keyframe_asked_at
        if asked is not None and now - asked < KEYFRAME_REQUEST_EVERY_S:
            return False
        self.keyframe_asked_at = now
        return True

    def _blocked_too_long(self) -> bool:
        if self.blocked_since is None:
            return False
        limit = KEYFRAME_GAP_WAIT_S if self._repairing_keyframe() else MAX_GAP_WAIT_S
        return self.clock() - self.blocked_since >= limit

    def _repairing_keyframe(self) -> bool:
        """The awaited keyframe has begun and waits for retransmissions: worth more patience
        than a delta frame (giving it up only asks for another, as big), and no new request."""
        if not self.awaiting_keyframe or self._origin is None:
            return False
        first = self._packets[self._origin % self._capacity]
        return first is not None and self.is_keyframe(getattr(first, "_data", b""))

    def _give_up_hole(self) -> None:
        """Skip the origin's hole to the first packet after it; the frames from there on
        need a keyframe first."""
        present = [
            self._packets[(self._origin + i) % self._capacity] is not None
            for i in range(self.capacity)
        ]
        hole = present.index(False) if False in present else self.capacity
        after = next((i for i in range(hole + 1, self.capacity) if present[i]), None)
        if after is not None:
            self.remove(after)
        self.gaps_given_up += 1
        self.awaiting_keyframe = True
        self.blocked_since = self.nacked_at = None

    def missing(self, limit: int = 64) -> list[int]:
        """The sequence numbers missing between the origin and the highest packet seen."""
        if self._origin is None or self.highest is None:
            return []
        span = min(uint16_add(self.highest, -self._origin), self.capacity)
        return [
            uint16_add(self._origin, i)
            for i in range(span)
            if self._packets[(self._origin + i) % self._capacity] is None
        ][:limit]

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        # Walk the contiguous packets from the origin (the first packet after the last
        # released frame). The stock buffer does the same walk but only ever ends a frame
        # at a timestamp change.
        packets: list[RtpPacket] = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                # A gap: wait (a retransmission) while later packets are here, but not
                # without bound (``add`` gives the hole up after MAX_GAP_WAIT_S).
                self._note_gap(count)
                return None
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

    def _note_gap(self, count: int) -> None:
        ahead = None if self.highest is None else uint16_add(self.highest, -self._origin)
        behind = ahead is not None and count < ahead < self.capacity
        if not behind:
            self.blocked_since = self.nacked_at = None  # the frame is still arriving
        elif self.blocked_since is None:
            self.blocked_since = self.clock()

    def _release(self, packets: list[RtpPacket], count: int, timestamp: int) -> JitterFrame:
        self.blocked_since = self.nacked_at = None
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
    buffer = replace_jitter_buffer(
        receiver, "video", CompleteFrameJitterBuffer, "the complete-frame release"
    )
    nacks = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
    if not isinstance(nacks, NewHoleNacks):  # first install (not a repeated call)
        receiver._RTCRtpReceiver__nack_generator = NewHoleNacks()  # type: ignore[attr-defined]
        _renack_holes(receiver, buffer)
    return buffer


def replace_jitter_buffer(
    receiver: RTCRtpReceiver, kind: str, buffer_class: type[BufferT], what: str
) -> BufferT:
    """Swap aiortc's jitter buffer of a ``kind`` receiver for a ``buffer_class`` of the same
    capacity (once: a receiver that has one keeps it), before any packet has arrived."""
    require_pinned_aiortc()
    if receiver._RTCRtpReceiver__kind != kind:  # type: ignore[attr-defined]
        raise ValueError(f"{what} is for {kind} receivers only")
    current = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    if isinstance(current, buffer_class):
        return current
    if current._origin is not None:
        raise RuntimeError(f"install {what} before media flows")
    buffer = buffer_class(capacity=current.capacity)
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return buffer


def _renack_holes(receiver: RTCRtpReceiver, buffer: CompleteFrameJitterBuffer) -> None:
    """After each packet: hand the decoder every further frame that is complete (aiortc
    takes one frame per packet, so frames queued behind a repaired hole would otherwise
    trickle out one packet at a time), NACK a new gap a second time (a lost NACK would
    cost a whole re-NACK round: ``RENACK_EVERY_S`` and a round trip), and NACK a hole that
    still blocks the buffer again (aiortc NACKs it once)."""
    handle = receiver._handle_rtp_packet
    nacks = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> Any:
        await handle(packet, arrival_time_ms)
        _drain(receiver, buffer)
        fresh = nacks.take_fresh() if isinstance(nacks, NewHoleNacks) else []
        if fresh and buffer.ssrc is not None:
            await receiver._send_rtcp_nack(buffer.ssrc, fresh)
        if buffer.renack_due():
            lost = buffer.missing()
            if lost and buffer.ssrc is not None:
                await receiver._send_rtcp_nack(buffer.ssrc, lost)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


def _drain(receiver: RTCRtpReceiver, buffer: CompleteFrameJitterBuffer) -> None:
    codec = receiver._RTCRtpReceiver__codecs.get(buffer.payload_type)  # type: ignore[attr-defined]
    if codec is None or not receiver._RTCRtpReceiver__decoder_thread:  # type: ignore[attr-defined]
        return
    for _ in range(buffer.capacity):  # bounded: each frame removes at least one packet
        frame = buffer.next_frame()
        if frame is None:
            return
        mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
        frame.timestamp = mapper.map(frame.timestamp)
        receiver._RTCRtpReceiver__decoder_queue.put((codec, frame))  # type: ignore[attr-defined]

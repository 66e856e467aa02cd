"""Hand each of the agent's audio packets on at once (aiortc's audio buffer prefetches 80 ms).

aiortc gives every audio ``RTCRtpReceiver`` a ``JitterBuffer(capacity=16, prefetch=4)``: a
packet reaches the decoder only when the fourth packet after it has arrived, 4 x 20 ms = 80 ms
at Opus's 20 ms packets, on every call, whatever the network does. On a portal call that is
most of the agent's audio latency at the customer (docs/portal.md, "Sound and picture in
step"), and the voice must instead wait on the *video* pipeline, by a measured hold.

An Opus RTP packet is one whole audio frame, so ``PromptAudioJitterBuffer`` releases a packet
as soon as it is the next in sequence. A gap (a lost or reordered packet) is waited on only
while at most ``reorder_packets`` later packets have arrived; then it is skipped and the later
packets go on. A packet arriving after its place was skipped is dropped (aiortc's stock rule
for anything before the origin). The default is 0 (skip at once): aiortc's receiver hands on
one frame per arriving packet, so every packet waited for stays as a backlog (20 ms more
latency for the rest of the call), while a skipped packet costs 20 ms of sound once; reordering
is rare on the loopback and LAN paths a worker serves. The customer's browser has its own
adaptive buffer (NetEq) for the network's jitter, and the worker re-encodes the voice anyway.

Every release records how long the packet waited in the buffer (``held_ms``): the audio
path's share that the lip-sync hold subtracts (``media_engine/lipsync.py``).

The install reaches into private attributes of ``RTCRtpReceiver``, like the video one
(``media_engine/jitterbuffer.py``): it refuses any aiortc but the pinned version, and
``tests/unit/test_audiojitter.py`` pins the source it relies on.
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from media_engine.jitterbuffer import replace_jitter_buffer

AUDIO_CAPACITY = 16  # aiortc's own choice for audio receivers (rtcrtpreceiver.py)
REORDER_PACKETS = 0
WINDOW = 50  # released packets in the running median of the hold (1 s at 20 ms)


class PromptAudioJitterBuffer(JitterBuffer):
    """aiortc's ``JitterBuffer`` for audio that releases each packet when it is next in line."""

    def __init__(
        self,
        capacity: int = AUDIO_CAPACITY,
        reorder_packets: int = REORDER_PACKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=False)
        self.reorder_packets = reorder_packets
        self._clock = clock
        self._arrived: dict[int, float] = {}
        self._held: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self.released = 0
        self.gaps_skipped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self._arrived[packet.sequence_number] = self._clock()
        if len(self._arrived) > self.capacity * 4:  # bounded: forget what the buffer dropped
            for seq in list(self._arrived)[: self.capacity * 2]:
                del self._arrived[seq]
        return super().add(packet)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        for skip in range(self.capacity):
            packet = self._packets[(self._origin + skip) % self._capacity]
            if packet is not None:
                break
        else:
            return None
        if skip > 0:
            later = sum(p is not None for p in self._packets)
            if later <= self.reorder_packets:
                return None  # a gap: wait a little for a reordered packet
            self.gaps_skipped += 1
            self.remove(skip)
        return self._release(packet)

    def _release(self, packet: RtpPacket) -> JitterFrame:
        self.remove(1)
        arrived = self._arrived.pop(packet.sequence_number, None)
        if arrived is not None:
            self._held.append((self._clock() - arrived) * 1000.0)
        self.released += 1
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]

    def held_ms(self) -> float:
        """The running median of how long released packets waited here, in milliseconds."""
        return statistics.median(self._held) if self._held else 0.0


def install_prompt_audio_release(receiver: RTCRtpReceiver) -> PromptAudioJitterBuffer:
    """Give an audio ``RTCRtpReceiver`` the prompt release; returns the new buffer.

    Call it before media flows (right after ``setRemoteDescription``). Video receivers are
    refused (``media_engine.jitterbuffer.install_complete_frame_release`` is theirs).
    """
    return replace_jitter_buffer(
        receiver, "audio", PromptAudioJitterBuffer, "the prompt audio release"
    )

"""Newest-frame reading, the outgoing track, and camera RTP timestamps end to end."""

import asyncio
import fractions

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_engine.rtptime import (
    RTP_TIMESTAMP_MODULO,
    WIRE_TIME_BASE,
    CameraTimestampMapper,
    keep_camera_timestamps,
    send_camera_timestamps,
    wire_pts,
)
from media_engine.tracks import FusedVideoTrack, NewestFrameReader


class QueueTrack(MediaStreamTrack):
    """A track fed by the test (like aiortc's RemoteStreamTrack: an unbounded queue)."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue = asyncio.Queue()

    async def recv(self):
        item = await self.queue.get()
        if item is None:
            raise MediaStreamError
        return item


def tiny(pts: int) -> av.VideoFrame:
    frame = av.VideoFrame(width=16, height=16, format="yuv420p")
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


async def test_the_reader_keeps_only_the_newest_frame():
    track = QueueTrack()
    reader = NewestFrameReader(track)
    for pts in range(10):
        track.queue.put_nowait(tiny(pts))
    await asyncio.sleep(0.05)
    frame = await reader.next()
    assert frame.pts == 9
    assert reader.skipped == 9
    assert reader.received.total == 10
    # nothing newer yet: next() waits
    waiting = asyncio.ensure_future(reader.next())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    track.queue.put_nowait(tiny(10))
    assert (await asyncio.wait_for(waiting, 2)).pts == 10
    track.queue.put_nowait(None)  # the track ends
    assert await asyncio.wait_for(reader.next(), 2) is None
    assert reader.ended.is_set()


async def test_a_slow_consumer_does_not_build_delay():
    track = QueueTrack()
    reader = NewestFrameReader(track)
    taken = []

    async def slow_pipeline():
        while (frame := await reader.next()) is not None:
            taken.append(frame.pts)
            await asyncio.sleep(0.03)  # slower than the frames come

    consumer = asyncio.ensure_future(slow_pipeline())
    for pts in range(30):
        track.queue.put_nowait(tiny(pts))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    track.queue.put_nowait(None)
    await asyncio.wait_for(consumer, 5)
    assert taken[-1] == 29  # it caught up with the newest frame
    assert len(taken) < 20  # and skipped instead of queueing


async def test_the_outgoing_track_sends_the_newest_fused_frame_once():
    track = FusedVideoTrack()
    track.put(tiny(1))
    track.put(tiny(2))
    assert (await track.recv()).pts == 2
    assert track.replaced == 1
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.02)
    assert not pending.done()
    track.put(tiny(3))
    assert (await asyncio.wait_for(pending, 2)).pts == 3
    # time never goes back on the wire (libvpx would refuse the frame)
    track.put(tiny(1))
    assert (await track.recv()).pts == 3 + 3000
    track.put(tiny(10))
    assert (await track.recv()).pts == 10 + 3002
    assert track.time_jumps == 1
    track.stop()
    try:
        await track.recv()
    except MediaStreamError:
        pass
    else:
        raise AssertionError("a stopped track must end")


def test_camera_timestamp_mapper_unwraps_and_never_rebases():
    mapper = CameraTimestampMapper()
    top = RTP_TIMESTAMP_MODULO - 3000
    assert mapper.map(top) == top
    assert mapper.map(top + 2999) == top + 2999
    assert mapper.map(1000) == RTP_TIMESTAMP_MODULO + 1000  # wrapped
    assert mapper.map(4000) == RTP_TIMESTAMP_MODULO + 4000
    assert mapper.map(top + 2000) == top + 2000  # a late frame from before the wrap


class PtsTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, first_pts: int) -> None:
        super().__init__()
        self.pts = first_pts

    async def recv(self):
        await asyncio.sleep(1 / 30)
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
        frame.pts = wire_pts(self.pts, fractions.Fraction(1, 90000))
        frame.time_base = WIRE_TIME_BASE
        self.pts += 3001  # not a multiple of anything convenient
        return frame


async def test_the_rtp_timestamp_on_the_wire_is_the_frames_pts():
    """A sender registered with send_camera_timestamps puts pts (mod 2**32) on the wire, and
    a receiver with keep_camera_timestamps decodes frames whose pts is that RTP timestamp."""
    first = RTP_TIMESTAMP_MODULO - 30000  # wraps after ten frames
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    got: asyncio.Queue = asyncio.Queue()
    readers = []

    @receiver_pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                await got.put(frame.pts)

        readers.append(asyncio.ensure_future(read()))

    try:
        sender = sender_pc.addTrack(PtsTrack(first))
        send_camera_timestamps(sender)
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        for transceiver in receiver_pc.getTransceivers():
            keep_camera_timestamps(transceiver.receiver)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        seen = [await asyncio.wait_for(got.get(), 20) for _ in range(15)]
    finally:
        await sender_pc.close()
        await receiver_pc.close()
    # every decoded pts is a pts the sender used, unwrapped across 2**32
    assert all((pts - first) % 3001 == 0 for pts in seen), seen
    assert seen == sorted(seen) and seen[-1] > RTP_TIMESTAMP_MODULO
    # other senders keep aiortc's random origin
    other = RTCPeerConnection()
    try:
        assert other.addTrack(PtsTrack(0)) is not None
    finally:
        await other.close()

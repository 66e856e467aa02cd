"""A real aiortc kiosk peer for tests and bench: sends stamped camera frames, reads them back.

``StampedCamera`` is a 640×480 (or any size) camera made from scikit-image's ``astronaut``
with motion, each frame stamped with its number (``tests/support/framestamp.py``) and paced
at ``fps``. ``ReturnedVideo`` reads the video that comes back, reads each frame's stamp and
notes the round trip (from the moment the camera handed the frame to the encoder to the
moment the decoded frame came back), whether the label is there, and whether the frame is
the "service paused" picture.
"""

import asyncio
import fractions
import functools
import time

import av
import cv2
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_engine.ice import offer_loopback_candidates
from media_engine.jitterbuffer import install_complete_frame_release
from media_engine.label import apply_label, label_region
from media_engine.paused import paused_frame
from media_engine.pipeline import scale_frame
from media_engine.rtptime import (
    WIRE_TIME_BASE,
    keep_camera_timestamps,
    send_camera_timestamps,
    wire_pts,
)
from tests.support import framestamp

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


@functools.cache
def _astronaut(width: int, height: int) -> np.ndarray:
    from skimage import data

    rgb = data.astronaut()
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (width, height))


class StampedCamera(MediaStreamTrack):
    """A paced camera whose frame ``n`` is ``frame_bgr(n)``."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.sent_at: dict[int, float] = {}
        self.count = 0
        self.frozen = False
        self._start: float | None = None

    def rtp_time(self, number: int) -> int:
        """Frame ``number``'s time in 90 kHz ticks from the first frame."""
        return round(number * 90000 / self.fps)

    def number_at(self, rtp_time: int) -> int | None:
        """The number (mod 65536, like a stamp) of the frame sent at ``rtp_time``, if any."""
        number = round(rtp_time * self.fps / 90000)
        return number % 65536 if number >= 0 and self.rtp_time(number) == rtp_time else None

    def frame_bgr(self, number: int) -> np.ndarray:
        """The camera picture of frame ``number`` (deterministic), stamped."""
        base = _astronaut(self.width, self.height)
        shift = int(8 * np.sin(number / 15.0))  # a slow side-to-side sway
        frame = np.roll(base, shift, axis=1)
        return framestamp.stamp(frame, number)

    async def next_number(self) -> int:
        """Wait until the next frame is due (``fps`` from the first) and return its number."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self.count / self.fps
            if due > now:
                await asyncio.sleep(due - now)
        number = self.count
        self.count += 1
        return number

    async def recv(self) -> av.VideoFrame:
        if self.frozen and self.readyState == "live":  # a kiosk that vanished: no goodbye
            await asyncio.Event().wait()
        number = await self.next_number()
        frame = av.VideoFrame.from_ndarray(self.frame_bgr(number), format="bgr24")
        # exactly rtp_time(number) on the wire when the sender keeps camera timestamps
        frame.pts = wire_pts(self.rtp_time(number), VIDEO_TIME_BASE)
        frame.time_base = WIRE_TIME_BASE
        self.sent_at[number % 65536] = time.monotonic()
        return frame


def label_distance(frame: np.ndarray, expected: np.ndarray) -> float:
    """Mean absolute difference in the label's region between two same-size BGR frames."""
    x, y, w, h = label_region(frame.shape[1], frame.shape[0])
    a = frame[y : y + h, x : x + w].astype(np.int16)
    b = expected[y : y + h, x : x + w].astype(np.int16)
    return float(np.abs(a - b).mean())


class ReturnedVideo:
    """Reads the returned track in its own task and keeps what the tests and bench need."""

    def __init__(self, track: MediaStreamTrack, camera: StampedCamera) -> None:
        self.camera = camera
        self.round_trips_ms: list[float] = []
        self.frames = 0
        self.sizes: dict[tuple[int, int], int] = {}  # (width, height) -> frames
        # the size of the latest frame, and since when (monotonic) frames have had it
        self.last_size: tuple[int, int] | None = None
        self.size_since: float | None = None
        self.stamped = 0
        self.labelled = 0
        self.unlabelled = 0
        self.paused = 0
        # frames matched to the camera frame they came from (by stamp, else by RTP timestamp)
        self.matched = 0
        # with camera timestamps on both sides: frames whose RTP timestamp is (not) the one
        # the camera sent them with
        self.same_timestamp = 0
        self.other_timestamp = 0
        self.match_timestamps = False
        self.last_number: int | None = None
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.check_label = True
        self.changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(track))

    def reset(self) -> None:
        self.round_trips_ms.clear()
        self.frames = self.stamped = self.labelled = self.unlabelled = self.paused = 0
        self.matched = 0
        self.same_timestamp = self.other_timestamp = 0
        self.first_at = self.last_at = None

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                bgr = frame.to_ndarray(format="bgr24")
                self._note(bgr, now, frame.pts)
        except MediaStreamError:
            pass

    def _note(self, bgr: np.ndarray, now: float, pts: int | None = None) -> None:
        self.frames += 1
        size = (bgr.shape[1], bgr.shape[0])
        self.sizes[size] = self.sizes.get(size, 0) + 1
        if size != self.last_size:
            self.last_size, self.size_since = size, now
        self.first_at = self.first_at or now
        self.last_at = now
        number = framestamp.read(bgr)
        if number is not None:
            self.stamped += 1
            self.last_number = number
            if self.match_timestamps and pts is not None:
                if pts == self.camera.rtp_time(number):
                    self.same_timestamp += 1
                else:
                    self.other_timestamp += 1
            if self.check_label:
                self._check_label(bgr, number)
        else:
            height, width = bgr.shape[:2]
            picture = paused_frame(width, height).astype(np.int16)
            if float(np.abs(bgr.astype(np.int16) - picture).mean()) < 12:
                self.paused += 1
            elif self.match_timestamps and pts is not None:
                # an engine drew over the stamp (avatar, swap): the RTP timestamp still says
                # which camera frame it was made from, as it does for the kiosk page
                number = self.camera.number_at(pts)
        if number is not None:
            self.matched += 1
            sent = self.camera.sent_at.get(number)
            if sent is not None:
                self.round_trips_ms.append((now - sent) * 1000.0)
        self.changed.set()

    def _check_label(self, bgr: np.ndarray, number: int) -> None:
        source = self.camera.frame_bgr(number)
        height, width = bgr.shape[:2]
        if (width, height) != (self.camera.width, self.camera.height):
            # adaptive resolution sent it smaller: compare at that size
            source = scale_frame(source, (width, height))
        with_label = apply_label(source.copy())
        if label_distance(bgr, with_label) < label_distance(bgr, source) / 3:
            self.labelled += 1
        else:
            self.unlabelled += 1

    def fps(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.frames - 1) / (self.last_at - self.first_at)

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


class KioskPeer:
    """The kiosk's side of the call, in aiortc."""

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        complete_frame_release: bool = True,
        camera_timestamps: bool = True,
    ) -> None:
        # Machines whose only interface is loopback (CI): aioice would gather no candidate.
        offer_loopback_candidates()
        self.camera = StampedCamera(width, height, fps)
        self.pc = RTCPeerConnection()
        self.returned: ReturnedVideo | None = None
        self.track_arrived = asyncio.Event()
        transceiver = self.pc.addTransceiver(self.camera, direction="sendrecv")
        if complete_frame_release:
            install_complete_frame_release(transceiver.receiver)
        if camera_timestamps:
            # like the page: our RTP timestamps are the camera's (0-based here), and returned
            # frames keep theirs, so both ends can be compared
            send_camera_timestamps(transceiver.sender)
            keep_camera_timestamps(transceiver.receiver)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and self.returned is None:
                self.returned = ReturnedVideo(track, self.camera)
                self.returned.match_timestamps = camera_timestamps
                self.track_arrived.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        if self.returned is not None:
            await self.returned.stop()
        await self.pc.close()

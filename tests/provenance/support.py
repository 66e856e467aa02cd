"""Fused frames from a real pipeline run (avatar engine, perception on) and the
transformations a screenshot or a re-shared clip goes through."""

import fractions
import io

import av
import cv2
import numpy as np
from skimage import data

from media_engine.assembly import build_pipeline


def camera_frames(count: int, width: int = 640, height: int = 480) -> list[np.ndarray]:
    """scikit-image's astronaut moving slowly across a 640×480 camera picture."""
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (360, 360))
    frames = []
    for i in range(count):
        canvas = np.full((height, width, 3), (70, 90, 110), np.uint8)
        x, y = 140 + (i % 20) * 2, 60 + (i % 10)
        canvas[y : y + 360, x : x + 360] = face
        frames.append(canvas)
    return frames


def fused_frames(session_id: str, count: int, engine: str = "avatar") -> list[np.ndarray]:
    """What the pipeline sends for ``count`` camera frames of one session (BGR)."""
    pipeline = build_pipeline(engine, None, session_id)
    out = []
    for i, bgr in enumerate(camera_frames(count)):
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts = 3000 * i
        frame.time_base = fractions.Fraction(1, 90000)
        out.append(pipeline.process(frame, fusion_allowed=True).to_ndarray(format="bgr24"))
    return out


def encode_clip(
    frames: list[np.ndarray], codec: str, kbps: int, vp8_extra: dict[str, str] | None = None
) -> bytes:
    """A webm (VP8) or mp4 (H.264) clip encoded with the settings of the kiosk's own stream:
    the media worker's VP8 options (media_engine/vp8.py), aiortc's H.264 ones (h264.py).
    ``vp8_extra``: libvpx options put over the media worker's (what-if runs only)."""
    from media_engine.vp8 import vp8_options

    buffer = io.BytesIO()
    bitrate = kbps * 1000
    with av.open(buffer, "w", format="webm" if codec == "libvpx" else "mp4") as out:
        stream = out.add_stream(codec, rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        if codec == "libx264":
            stream.options = {"level": "31", "tune": "zerolatency"}
            stream.codec_context.profile = "Baseline"
        else:
            stream.gop_size, stream.codec_context.qmin, stream.codec_context.qmax = 3000, 2, 56
            stream.options = {**vp8_options(bitrate), **(vp8_extra or {})}
        for bgr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def decode_clip(clip: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(clip)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def session_lost(picture: np.ndarray, key, mark) -> bool:
    """Whether ``picture`` fails to verify with ``key`` as ``mark``'s session."""
    from media_engine.provenance.verify import verify_pictures

    finding = verify_pictures([picture], (key,))
    return finding.payload is None or finding.payload.session_tag != mark.session_tag


def vp8_300k_misses(
    outputs: list[np.ndarray], key, mark, step: int = 1, vp8_extra: dict[str, str] | None = None
) -> list[int]:
    """Which of every ``step``-th frame of ``outputs`` sent as a new VP8 300 kb/s stream
    (480×360, the 300 kb/s rung; the media worker's options, ``vp8_extra`` over them) lose
    the mark's session."""
    small = [cv2.resize(p, (480, 360), interpolation=cv2.INTER_AREA) for p in outputs]
    decoded = decode_clip(encode_clip(small, "libvpx", 300, vp8_extra))
    return [i for i in range(0, len(decoded), step) if session_lost(decoded[i], key, mark)]


def jpeg(bgr: np.ndarray, quality: int = 70) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def _crop(bgr: np.ndarray, side: str, share: float = 0.1) -> np.ndarray:
    h, w = bgr.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return {
        "left": bgr[:, dx:],
        "right": bgr[:, : w - dx],
        "top": bgr[dy:],
        "bottom": bgr[: h - dy],
    }[side]


# Each picture transformation of the issue (codecs are applied to whole clips).
TRANSFORMS = {
    "none": lambda bgr: bgr,
    "jpeg_q70": jpeg,
    "half_size": lambda bgr: cv2.resize(
        bgr, (bgr.shape[1] // 2, bgr.shape[0] // 2), interpolation=cv2.INTER_AREA
    ),
    "crop_left": lambda bgr: _crop(bgr, "left"),
    "crop_right": lambda bgr: _crop(bgr, "right"),
    "crop_top": lambda bgr: _crop(bgr, "top"),
    "crop_bottom": lambda bgr: _crop(bgr, "bottom"),
    "brighter": lambda bgr: cv2.convertScaleAbs(bgr, alpha=1.15, beta=20),
    "darker_lower_contrast": lambda bgr: cv2.convertScaleAbs(bgr, alpha=0.8, beta=-10),
}
CODECS = {"vp8_300k": ("libvpx", 300), "h264_300k": ("libx264", 300)}


def png(bgr: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    return encoded.tobytes()

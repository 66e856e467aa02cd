"""Pictures and clips in, findings out: is the mark there, under which key, what tag.

A picture is marked when the sync peak is far above what unmarked pictures reach
(``SCORE_ALONE``), or clearly above it and the payload decodes with a valid CRC
(``SCORE_WITH_TAG``): the CRC, read at most twice (detect.py), leaves 2 chances in 65,536
per key that noise passes it.
A clip (mp4, webm, ...) is sampled at up to ``CLIP_FRAMES`` frames and is marked when the
majority of them are; its tag is the most common among the marked frames. When fewer are,
the frames' residuals are averaged and searched once more, under the same thresholds: the
mark is the same in every frame of a session, the picture and the codec's noise are not
(someone's low-bitrate re-encode of a recording made mid-session can leave most frames
under the threshold one by one: docs/provenance.md). When the mean does not find it either,
the clip is still marked when ``AGREEING_FRAMES`` of its frames, each marked alone, carry
the same tag: each would verify as a screenshot, and two CRC-checked 64-bit tags that
agree by chance are out of the question. No database here: finding the session of a tag
is the caller's (``kiosk/provenance``).
"""

import dataclasses
import io
from collections import Counter
from dataclasses import dataclass

import av
import cv2
import numpy as np

from media_engine.provenance import payload as coding
from media_engine.provenance.detect import luma, prepared, search
from media_engine.provenance.keys import Key

# Sync scores: unmarked pictures stay below ~5.5 (bench/provenance.py measures them);
# marked frames after a 300 kb/s encode reach 7 and more.
NULL_SCORE = 4.0
SCORE_WITH_TAG = 6.0
SCORE_ALONE = 9.0
CLIP_FRAMES = 15
AGREEING_FRAMES = 2  # a clip's frames, each marked alone with the same tag, that mark it
MAX_CLIP_FRAMES_READ = 900  # 30 s at 30 fps: longer clips are read up to there
MAX_PIXELS = 4096 * 4096


class UnreadableMedia(ValueError):
    """Neither a picture nor a video that can be decoded."""


@dataclass(frozen=True)
class Finding:
    ai_generated: bool
    confidence: float  # 0..1: how sure the mark is there
    key_id: str | None
    payload: coding.Payload | None
    frames: int  # frames looked at
    marked_frames: int
    averaged: bool = False  # the verdict is that of the clip's frames' mean (no majority)
    agreeing: bool = False  # ... that of frames agreeing on a tag (no majority, nor the mean)


def _finding(res: np.ndarray | None, keys: tuple[Key, ...], frames: int = 1) -> Finding:
    """The best key's finding in one ``prepared`` residual (a picture's, or the mean of
    ``frames`` of a clip's)."""
    best: Finding | None = None
    for key in keys:
        found = search(key.secret, res)
        marked = found.score >= SCORE_ALONE or (
            found.tag is not None and found.score >= SCORE_WITH_TAG
        )
        confidence = float(np.clip((found.score - NULL_SCORE) / (SCORE_ALONE - NULL_SCORE), 0, 1))
        if marked and found.tag is not None:
            confidence = max(confidence, 0.99)
        payload = coding.decipher(key.secret, found.tag) if marked and found.tag else None
        finding = Finding(
            ai_generated=marked,
            confidence=round(confidence, 3),
            key_id=key.key_id if marked else None,
            payload=payload,
            frames=frames,
            marked_frames=int(marked),
        )
        if best is None or (finding.ai_generated, finding.confidence) > (
            best.ai_generated,
            best.confidence,
        ):
            best = finding
    assert best is not None
    return best


def verify_pictures(pictures: list[np.ndarray], keys: tuple[Key, ...]) -> Finding:
    """One finding over one picture or a clip's frames (majority, else their mean, else
    frames that agree on a tag)."""
    if not pictures:
        raise UnreadableMedia("no frames")
    residuals = [prepared(luma(picture)) for picture in pictures]
    findings = [_finding(res, keys) for res in residuals]
    if len(findings) == 1:
        return findings[0]
    marked = [f for f in findings if f.ai_generated]
    tags = Counter((f.key_id, f.payload) for f in marked if f.payload is not None)
    majority = len(marked) * 2 > len(findings)
    if not majority:
        averaged = _averaged_finding(residuals, keys, len(marked))
        if averaged.ai_generated:
            return averaged
        return _agreeing(marked, tags, len(findings)) or averaged
    key_id, payload = tags.most_common(1)[0][0] if tags else (None, None)
    if key_id is None:
        key_id = Counter(f.key_id for f in marked).most_common(1)[0][0]
    return Finding(
        ai_generated=True,
        confidence=round(float(np.mean([f.confidence for f in findings])), 3),
        key_id=key_id,
        payload=payload,
        frames=len(findings),
        marked_frames=len(marked),
    )


def _agreeing(marked: list[Finding], tags: Counter, frames: int) -> Finding | None:
    """The clip's finding from ``AGREEING_FRAMES`` or more of its ``marked`` frames that carry
    the same key and tag (``tags``: how many carry each), or None."""
    if not tags or tags.most_common(1)[0][1] < AGREEING_FRAMES:
        return None
    (key_id, payload), _ = tags.most_common(1)[0]
    agreeing = [f for f in marked if (f.key_id, f.payload) == (key_id, payload)]
    return Finding(
        ai_generated=True,
        confidence=round(float(np.mean([f.confidence for f in agreeing])), 3),
        key_id=key_id,
        payload=payload,
        frames=frames,
        marked_frames=len(marked),
        agreeing=True,
    )


def _averaged_finding(residuals: list, keys: tuple[Key, ...], marked_frames: int) -> Finding:
    """The finding in the mean of a clip's frame residuals, those of its commonest shape
    (residuals are brought to one height, so the resolution ladder's sizes agree; a
    recording that starts in another window shape does not)."""
    shapes = Counter(res.shape for res in residuals if res is not None)
    mean = None
    if shapes:
        shape = shapes.most_common(1)[0][0]
        mean = np.mean([res for res in residuals if res is not None and res.shape == shape], 0)
    finding = _finding(mean, keys, frames=len(residuals))
    return dataclasses.replace(finding, marked_frames=marked_frames, averaged=True)


def read_pictures(data: bytes) -> list[np.ndarray]:
    """The picture in ``data``, or frames spread over a clip (BGR)."""
    if not data:
        raise UnreadableMedia("the file is empty")
    picture = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if picture is not None:
        if picture.shape[0] * picture.shape[1] > MAX_PIXELS:
            raise UnreadableMedia("the picture is larger than 4096×4096 pixels")
        return [picture]
    try:
        frames = _clip_frames(data)
    except (av.error.FFmpegError, ValueError, EOFError) as exc:
        if isinstance(exc, UnreadableMedia):
            raise
        raise UnreadableMedia("not a picture or a video this service can read") from exc
    if not frames:
        raise UnreadableMedia("the video has no frames")
    return frames


def _clip_frames(data: bytes) -> list[np.ndarray]:
    """Up to ``CLIP_FRAMES`` frames spread over the clip's first ``MAX_CLIP_FRAMES_READ``
    (every ``stride``-th; the stride doubles whenever twice as many are kept)."""
    kept: list[np.ndarray] = []
    stride = 1
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.video:
            raise UnreadableMedia("the file has no video stream")
        for index, frame in enumerate(container.decode(video=0)):
            if index >= MAX_CLIP_FRAMES_READ:
                break
            if frame.width * frame.height > MAX_PIXELS:
                raise UnreadableMedia("the video is larger than 4096×4096 pixels")
            if index % stride:
                continue
            kept.append(frame.to_ndarray(format="bgr24"))
            if len(kept) >= 2 * CLIP_FRAMES:
                kept, stride = kept[::2], stride * 2
    return kept

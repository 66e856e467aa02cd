"""The load bench's cheap kiosks: a pre-encoded camera cycle that stays decodable, and a
receiver that reads the RTP timestamp and keyframe sizes without decoding."""

import av
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.jitterbuffer import JitterFrame

from bench.site import (
    CAMERA_CYCLE,
    RETURNED_KEYFRAMES,
    TimestampOnlyDecoder,
    pre_encoded_camera,
    vp8_keyframe_size,
)


def test_the_camera_cycle_starts_on_a_keyframe_and_decodes_when_it_repeats():
    packets = pre_encoded_camera(160, 120, 30.0)
    assert len(packets) == CAMERA_CYCLE
    assert vp8_keyframe_size(packets[0]) == (160, 120)
    assert all(vp8_keyframe_size(p) is None for p in packets[1:])
    decoder = Vp8Decoder()
    decoded = [f for p in packets + packets for f in decoder.codec.decode(av.Packet(p))]
    assert len(decoded) == 2 * CAMERA_CYCLE
    assert {(f.width, f.height) for f in decoded} == {(160, 120)}


def test_the_timestamp_only_decoder_keeps_the_rtp_timestamp_and_counts_keyframes():
    packets = pre_encoded_camera(160, 120, 30.0)
    RETURNED_KEYFRAMES.clear()
    decoder = TimestampOnlyDecoder()
    (first,) = decoder.decode(JitterFrame(data=packets[0], timestamp=3000))
    (second,) = decoder.decode(JitterFrame(data=packets[1], timestamp=6000))
    assert (first.pts, second.pts) == (3000, 6000)
    assert RETURNED_KEYFRAMES == {(160, 120): 1}


def test_a_truncated_or_inter_frame_has_no_keyframe_size():
    assert vp8_keyframe_size(b"") is None
    assert vp8_keyframe_size(b"\x00\x00\x00\x9d\x01") is None
    assert vp8_keyframe_size(b"\x01" + b"\x00" * 12) is None

"""The render step as an ONNX graph, so that it runs on the GPU where there is one.

The CPU computes only the coarse warp grid (a few thousand points, see ``warp.py``); the
graph upsamples it, samples the source with ``GridSample``, optionally matches colour (a
per-channel gain and offset in CIE Lab, then Lab -> BGR as OpenCV defines it for 8-bit
images) and blends the result into the frame region with an upsampled coarse alpha. The
source image (avatar or portrait) is a constant of the graph: it is uploaded once.

``OnnxRenderer`` and ``CpuRenderer`` do the same thing and are tested to agree; the engines
use the graph when ONNX Runtime's CUDA provider is present and OpenCV on the CPU, where the
graph is slower (``bench/pipeline.py`` shows both).
"""

import cv2
import numpy as np

from media_engine.engines.warp import Region, WarpGrid, upsample_maps

OPSET = 20
# OpenCV's Lab (8-bit): D65 white, sRGB primaries.
_XN, _ZN = 0.950456, 1.088754
_XYZ_TO_RGB = np.array(
    [
        [3.240479, -1.53715, -0.498535],
        [-0.969256, 1.875991, 0.041556],
        [0.055648, -0.204043, 1.057311],
    ],
    np.float32,
)


def _const(name: str, value):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value), name)


def _upsample_to_frame(name: str, leading_dims: str, out: str) -> list:
    """Nodes that upsample a coarse (1, C, gh, gw) map bilinearly and crop it to the frame.

    The grid and the alpha mask go through exactly the same steps, so they stay aligned:
    resize to ``leading_dims + up`` (the frame rounded up to whole grid cells), then slice
    to the frame's ``hw``.
    """
    from onnx import helper

    return [
        helper.make_node("Concat", [leading_dims, "up"], [f"{name}_sizes"], axis=0),
        helper.make_node(
            "Resize",
            [name, "", "", f"{name}_sizes"],
            [f"{name}_up"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("Slice", [f"{name}_up", "zeros2", "hw", "axes23"], [out]),
    ]


def build_render_graph(source: np.ndarray, *, lab: bool, blend: bool):
    """The graph for one source image (H×W×3; BGR uint8, or Lab uint8 when ``lab``).

    Inputs: ``grid`` (1, 2, gh, gw) source pixel coordinates; ``size`` int64 [h, w, gh*s,
    gw*s] of the region and the upsampled grid; with ``lab``: ``gain``, ``offset`` (3,) for
    the Lab channels; with ``blend``: ``base`` (h, w, 3) uint8 and ``alpha`` (1, 1, gh, gw).
    Output ``out`` (h, w, 3) uint8. Needs the ``onnx`` package (the ``gpu`` extra).
    """
    import onnx
    from onnx import TensorProto, helper

    hs, ws = source.shape[:2]
    src = source.astype(np.float32).transpose(2, 0, 1)[None]
    inits = [
        _const("source", src),
        _const("scale_xy", np.array([2.0 / ws, 2.0 / hs], np.float32).reshape(1, 2, 1, 1)),
        _const("shift_xy", np.array([1.0 / ws - 1, 1.0 / hs - 1], np.float32).reshape(1, 2, 1, 1)),
        _const("one_two", np.array([1, 2], np.int64)),
        _const("zeros2", np.array([0, 0], np.int64)),
        _const("axes23", np.array([2, 3], np.int64)),
        _const("idx_hw", np.array([0, 1], np.int64)),
        _const("idx_up", np.array([2, 3], np.int64)),
        _const("f0", np.array(0.0, np.float32)),
        _const("f255", np.array(255.0, np.float32)),
        _const("fhalf", np.array(0.5, np.float32)),
    ]
    nodes = [
        helper.make_node("Gather", ["size", "idx_hw"], ["hw"], axis=0),
        helper.make_node("Gather", ["size", "idx_up"], ["up"], axis=0),
        *_upsample_to_frame("grid", "one_two", "grid_hw"),
        helper.make_node("Mul", ["grid_hw", "scale_xy"], ["grid_s"]),
        helper.make_node("Add", ["grid_s", "shift_xy"], ["grid_n"]),
        helper.make_node("Transpose", ["grid_n"], ["grid_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node(
            "GridSample",
            ["source", "grid_nhwc"],
            ["sampled"],
            mode="linear",
            padding_mode="border",
            align_corners=0,
        ),
    ]
    inputs = [
        helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 2, "gh", "gw"]),
        helper.make_tensor_value_info("size", TensorProto.INT64, [4]),
    ]
    colour = "sampled"
    if lab:
        inputs += [
            helper.make_tensor_value_info("gain", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("offset", TensorProto.FLOAT, [3]),
        ]
        inits += [_const("c_shape", np.array([1, 3, 1, 1], np.int64))]
        nodes += [
            helper.make_node("Reshape", ["gain", "c_shape"], ["gain4"]),
            helper.make_node("Reshape", ["offset", "c_shape"], ["offset4"]),
            helper.make_node("Mul", ["sampled", "gain4"], ["lab_g"]),
            helper.make_node("Add", ["lab_g", "offset4"], ["lab_off"]),
            # As the 8-bit Lab image of the OpenCV path: whole levels within 0..255.
            helper.make_node("Add", ["lab_off", "fhalf"], ["lab_half"]),
            helper.make_node("Floor", ["lab_half"], ["lab_round"]),
            helper.make_node("Clip", ["lab_round", "f0", "f255"], ["lab_adj"]),
        ]
        lab_nodes, lab_inits = _lab_to_bgr("lab_adj", "bgr_f")
        nodes += lab_nodes
        inits += lab_inits
        colour = "bgr_f"
    nodes += [helper.make_node("Transpose", [colour], ["hwc4"], perm=[0, 2, 3, 1])]
    nodes += [helper.make_node("Squeeze", ["hwc4", "zeros1"], ["hwc"])]
    inits += [_const("zeros1", np.array([0], np.int64))]
    result = "hwc"
    if blend:
        inputs += [
            helper.make_tensor_value_info("base", TensorProto.UINT8, ["h", "w", 3]),
            helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, "gh", "gw"]),
        ]
        inits += [_const("alpha_c", np.array([1, 1], np.int64))]
        nodes += [
            *_upsample_to_frame("alpha", "alpha_c", "alpha_hw"),
            helper.make_node("Transpose", ["alpha_hw"], ["alpha_t"], perm=[0, 2, 3, 1]),
            helper.make_node("Squeeze", ["alpha_t", "zeros1"], ["alpha_hwc"]),
            helper.make_node("Cast", ["base"], ["base_f"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["hwc", "base_f"], ["diff"]),
            helper.make_node("Mul", ["diff", "alpha_hwc"], ["diff_a"]),
            helper.make_node("Add", ["base_f", "diff_a"], ["blended"]),
        ]
        result = "blended"
    nodes += [
        helper.make_node("Add", [result, "fhalf"], ["rounded"]),
        helper.make_node("Clip", ["rounded", "f0", "f255"], ["clipped"]),
        helper.make_node("Cast", ["clipped"], ["out"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes,
        "render",
        inputs,
        [helper.make_tensor_value_info("out", TensorProto.UINT8, ["h", "w", 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def _lab_to_bgr(lab: str, out: str) -> tuple[list, list]:
    """Nodes turning an OpenCV 8-bit Lab tensor (1, 3, h, w) into BGR 0..255 float."""
    from onnx import helper, numpy_helper

    delta = 6.0 / 29.0
    inits = [
        _const("lab_scale", np.array([100.0 / 255.0, 1.0, 1.0], np.float32).reshape(1, 3, 1, 1)),
        _const("lab_shift", np.array([0.0, -128.0, -128.0], np.float32).reshape(1, 3, 1, 1)),
        # f = M @ [L, a, b] + c: fx = (L+16)/116 + a/500, fy = (L+16)/116, fz = fy - b/200
        _const(
            "f_mat",
            np.array([[1 / 116, 1 / 500, 0], [1 / 116, 0, 0], [1 / 116, 0, -1 / 200]], np.float32),
        ),
        _const("f_c", np.array([16 / 116] * 3, np.float32).reshape(1, 3, 1, 1)),
        _const("delta", np.array(delta, np.float32)),
        _const("lin_k", np.array(3 * delta * delta, np.float32)),
        _const("lin_c", np.array(4.0 / 29.0, np.float32)),
        _const("three", np.array(3.0, np.float32)),
        _const("white", np.array([_XN, 1.0, _ZN], np.float32).reshape(1, 3, 1, 1)),
        # XYZ -> linear RGB, rows reordered to B, G, R.
        _const("rgb_mat", _XYZ_TO_RGB[::-1].copy()),
        _const("lin0", np.array(0.0, np.float32)),
        _const("lin1", np.array(1.0, np.float32)),
        _const("srgb_t", np.array(0.0031308, np.float32)),
        _const("srgb_k", np.array(12.92, np.float32)),
        _const("srgb_a", np.array(1.055, np.float32)),
        _const("srgb_b", np.array(0.055, np.float32)),
        _const("srgb_g", np.array(1.0 / 2.4, np.float32)),
        _const("to255", np.array(255.0, np.float32)),
    ]
    n = helper.make_node
    nodes = [
        n("Mul", [lab, "lab_scale"], ["lab_s"]),
        n("Add", ["lab_s", "lab_shift"], ["lab_real"]),
        n("Transpose", ["lab_real"], ["lab_last"], perm=[0, 2, 3, 1]),
        n("MatMul", ["lab_last", "f_mat_t"], ["f_last"]),
        n("Transpose", ["f_last"], ["f_lin"], perm=[0, 3, 1, 2]),
        n("Add", ["f_lin", "f_c"], ["f"]),
        n("Pow", ["f", "three"], ["f_cube"]),
        n("Sub", ["f", "lin_c"], ["f_off"]),
        n("Mul", ["f_off", "lin_k"], ["f_linear"]),
        n("Greater", ["f", "delta"], ["f_big"]),
        n("Where", ["f_big", "f_cube", "f_linear"], ["xyz_n"]),
        n("Mul", ["xyz_n", "white"], ["xyz"]),
        n("Transpose", ["xyz"], ["xyz_last"], perm=[0, 2, 3, 1]),
        n("MatMul", ["xyz_last", "rgb_mat_t"], ["bgr_last"]),
        n("Clip", ["bgr_last", "lin0", "lin1"], ["bgr_lin"]),
        n("Mul", ["bgr_lin", "srgb_k"], ["srgb_low"]),
        n("Pow", ["bgr_lin", "srgb_g"], ["bgr_pow"]),
        n("Mul", ["bgr_pow", "srgb_a"], ["bgr_pow_a"]),
        n("Sub", ["bgr_pow_a", "srgb_b"], ["srgb_high"]),
        n("Greater", ["bgr_lin", "srgb_t"], ["srgb_big"]),
        n("Where", ["srgb_big", "srgb_high", "srgb_low"], ["bgr_unit"]),
        n("Mul", ["bgr_unit", "to255"], ["bgr_255"]),
        n("Transpose", ["bgr_255"], [out], perm=[0, 3, 1, 2]),
    ]
    f_mat = numpy_helper.to_array(inits[2])
    rgb = numpy_helper.to_array(inits[9])
    inits += [_const("f_mat_t", f_mat.T.copy()), _const("rgb_mat_t", rgb.T.copy())]
    return nodes, inits


def _size(grid: WarpGrid) -> np.ndarray:
    gh, gw = grid.coverage.shape
    r = grid.region
    return np.array([r.h, r.w, gh * grid.step, gw * grid.step], np.int64)


class OnnxRenderer:
    """Runs the render graph with ONNX Runtime (CUDA where present)."""

    def __init__(self, source: np.ndarray, *, lab: bool, blend: bool, providers=None) -> None:
        from media_engine.runtime import create_session

        self.lab, self.blend = lab, blend
        model = build_render_graph(source, lab=lab, blend=blend)
        self.session = create_session(model.SerializeToString(), providers=providers)

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def render(
        self,
        grid: WarpGrid,
        *,
        gain: np.ndarray | None = None,
        offset: np.ndarray | None = None,
        base: np.ndarray | None = None,
        alpha: np.ndarray | None = None,
    ) -> np.ndarray:
        feed = {
            "grid": grid.map_xy[None],
            "size": _size(grid),
        }
        if self.lab:
            feed["gain"] = np.asarray(gain, np.float32)
            feed["offset"] = np.asarray(offset, np.float32)
        if self.blend:
            feed["base"] = np.ascontiguousarray(base)
            feed["alpha"] = np.ascontiguousarray(alpha, np.float32)[None, None]
        return self.session.run(["out"], feed)[0]


class CpuRenderer:
    """The same render step with OpenCV (faster than the graph on a CPU)."""

    provider = "OpenCV"

    def __init__(self, source: np.ndarray, *, lab: bool, blend: bool) -> None:
        self.source = source
        self.lab, self.blend = lab, blend

    def render(
        self,
        grid: WarpGrid,
        *,
        gain: np.ndarray | None = None,
        offset: np.ndarray | None = None,
        base: np.ndarray | None = None,
        alpha: np.ndarray | None = None,
    ) -> np.ndarray:
        map_x, map_y = upsample_maps(grid)
        # Fixed-point maps: converting once is cheaper than remap converting per block.
        fixed, fraction = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        out = cv2.remap(
            self.source, fixed, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        if self.lab:
            lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain + offset + 0.5, 0, 255)
            out = cv2.LUT(out, lut.astype(np.uint8)[:, None, :])
            out = cv2.cvtColor(out, cv2.COLOR_LAB2BGR)
        if self.blend:
            r = grid.region
            gh, gw = alpha.shape
            a = cv2.resize(alpha, (gw * grid.step, gh * grid.step), interpolation=cv2.INTER_LINEAR)
            a = a[: r.h, : r.w, None]
            out = (base + (out.astype(np.float32) - base) * a + 0.5).astype(np.uint8)
        return out


def make_renderer(source: np.ndarray, *, lab: bool, blend: bool, providers=None):
    """The graph on CUDA, OpenCV otherwise (the graph is slower than OpenCV on a CPU)."""
    from media_engine.runtime import cuda_available

    if cuda_available():
        return OnnxRenderer(source, lab=lab, blend=blend, providers=providers)
    return CpuRenderer(source, lab=lab, blend=blend)


__all__ = ["CpuRenderer", "OnnxRenderer", "Region", "build_render_graph", "make_renderer"]

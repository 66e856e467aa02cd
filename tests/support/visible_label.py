"""Whether a received (decoded) frame shows the visible "AI-generated" label.

The label (``media_engine/label.py``) is white text, fully opaque, on a dark pill that is
two thirds opaque. A codec blurs the thin text into the pill (a start-of-stream VP8
keyframe, JPEG at quality 10), so comparing the text's pixels with the label's own is not
enough on its own: that difference reaches 30–45 on frames where the label is plainly
readable. What survives every codec is the label's contrast: where the label has text, the
frame is much brighter than where the label has only the pill. A frame without the label
has no such pattern in that place (the contrast is within ±35 on natural images,
checkerboards and printed text), whatever it shows there.
"""

import numpy as np

from media_engine.label import _scaled

# The text's alpha is 256 (of 256), the pill's 170; the text's antialiased edges lie between.
_TEXT_ALPHA = 240
_PILL_ALPHA = (100, 180)
# The label's own text-over-pill contrast is 140–220 grey levels once decoded; unlabelled
# pictures stay within ±35 (tests/unit/test_visible_label.py).
MIN_CONTRAST = 80.0
# The text's pixels must still be the label's near-white (a bright scene is not enough).
MAX_TEXT_DIFFERENCE = 60.0


def label_contrast(bgr: np.ndarray) -> tuple[float, float]:
    """(text-over-pill contrast, mean difference from the label's text) in a BGR frame."""
    height, width = bgr.shape[:2]
    premultiplied, inverse_alpha, x, y = _scaled(width, height)
    alpha = 256 - inverse_alpha[:, :, 0].astype(np.int32)
    text = alpha > _TEXT_ALPHA
    pill = (alpha > _PILL_ALPHA[0]) & (alpha <= _PILL_ALPHA[1])
    if text.sum() < 20 or pill.sum() < 20:
        return 0.0, float("inf")  # too small a frame for a readable label
    label = (premultiplied >> 8).astype(np.float32)
    h, w = text.shape
    region = bgr[y : y + h, x : x + w].astype(np.float32)
    contrast = float(region[text].mean() - region[pill].mean())
    difference = float(np.abs(region[text] - label[text]).mean())
    return contrast, difference


def carries_label(bgr: np.ndarray) -> bool:
    """Whether the label's white text stands out from its dark pill where the label goes."""
    contrast, difference = label_contrast(bgr)
    return contrast >= MIN_CONTRAST and difference <= MAX_TEXT_DIFFERENCE

"""Stamp a frame number into a BGR frame so that it survives VP8, and read it back.

The stamp is 20 black/white blocks (16 bits of frame number modulo 65536, then a 4-bit
check) in two rows in the frame's top-right corner, far from the label (bottom-left). Block
size and position scale with the frame width (16 px blocks on 16 px macroblock boundaries at
640 px), so a stamp survives scaling too. Reading samples the middle of each block and checks
the 4 check bits, so a damaged stamp reads as ``None``, never as a wrong number.
"""

import numpy as np

COLUMNS = 10
ROWS = 2
DATA_BITS = 16
# A block is this share of the frame width: 16 px at 640.
BLOCK_SHARE = 1 / 40
MIN_WIDTH = 80


def _check(number: int) -> int:
    # xor of the four nibbles, xor 0b1010 so that an all-black or all-white patch (a plain
    # background) never reads as a stamp
    return (number ^ (number >> 4) ^ (number >> 8) ^ (number >> 12) ^ 0b1010) & 0xF


def _bits(number: int) -> list[int]:
    number %= 1 << DATA_BITS
    word = (number << 4) | _check(number)
    return [(word >> (DATA_BITS + 3 - i)) & 1 for i in range(DATA_BITS + 4)]


def _geometry(width: int, height: int) -> tuple[float, float, float]:
    if width < MIN_WIDTH or height < MIN_WIDTH // 2:
        raise ValueError(f"frame {width}x{height} is too small for a frame stamp")
    block = width * BLOCK_SHARE
    x0 = width - block * (COLUMNS + 1)
    y0 = block
    return block, x0, y0


def stamp(frame: np.ndarray, number: int) -> np.ndarray:
    """Draw ``number`` (mod 65536) into a BGR uint8 frame in place and return the frame."""
    height, width = frame.shape[:2]
    block, x0, y0 = _geometry(width, height)
    for i, bit in enumerate(_bits(number)):
        row, column = divmod(i, COLUMNS)
        left, top = round(x0 + column * block), round(y0 + row * block)
        right, bottom = round(x0 + (column + 1) * block), round(y0 + (row + 1) * block)
        frame[top:bottom, left:right] = 255 if bit else 0
    return frame


def read(frame: np.ndarray) -> int | None:
    """The number stamped into a BGR frame, or ``None`` when there is no readable stamp."""
    height, width = frame.shape[:2]
    try:
        block, x0, y0 = _geometry(width, height)
    except ValueError:
        return None
    inset = block / 4
    word = 0
    for i in range(DATA_BITS + 4):
        row, column = divmod(i, COLUMNS)
        left = round(x0 + column * block + inset)
        top = round(y0 + row * block + inset)
        right = max(left + 1, round(x0 + (column + 1) * block - inset))
        bottom = max(top + 1, round(y0 + (row + 1) * block - inset))
        level = float(frame[top:bottom, left:right].mean())
        if 70 < level < 185:
            return None  # neither black nor white: not a stamp
        word = (word << 1) | (level >= 128)
    number, check = word >> 4, word & 0xF
    return number if _check(number) == check else None

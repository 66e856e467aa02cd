"""The 64-bit tag a mark carries, and the bits it is sent as.

The tag says which session made a frame, and in which minute, to whoever holds the key and
to nobody else: ``minute`` (26 bits: minutes since the Unix epoch, modulo 2**26, i.e. 127
years) and ``session_tag`` (38 bits of HMAC-SHA256 over the installation and the session id)
are packed into 64 bits and enciphered with a keyed 4-round Feistel permutation. Without
the key the tag is 64 random-looking bits; with it the verifier reads the minute back and
finds the session by recomputing ``session_tag`` for the sessions of that minute. No
personal data goes in: a session id is a random UUID.

On the wire the tag gets a CRC-16 (80 bits) and a rate-1/2 convolutional code (constraint
length 7, the NASA/Voyager polynomials, 6 tail bits): 172 coded bits, decoded with a soft
Viterbi decoder. Pure functions, no I/O.
"""

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

MINUTE_BITS = 26
SESSION_BITS = 38
TAG_BITS = MINUTE_BITS + SESSION_BITS
CRC_BITS = 16
MESSAGE_BITS = TAG_BITS + CRC_BITS
_K = 7  # constraint length
_POLYS = (0o171, 0o133)
CODED_BITS = 2 * (MESSAGE_BITS + _K - 1)


@dataclass(frozen=True)
class Payload:
    minute: int  # minutes since the epoch, modulo 2**MINUTE_BITS
    session_tag: int  # SESSION_BITS bits


def session_tag(secret: bytes, installation: str, session_id: str) -> int:
    """The keyed 38-bit tag of one session of one installation."""
    message = f"session|{installation}|{session_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SESSION_BITS)


def _round(secret: bytes, number: int, half: int) -> int:
    data = b"feistel" + bytes([number]) + half.to_bytes(4, "big")
    return int.from_bytes(hmac.new(secret, data, hashlib.sha256).digest()[:4], "big")


def encipher(secret: bytes, payload: Payload) -> int:
    """The 64-bit tag of ``payload`` under ``secret``."""
    word = (payload.minute % (1 << MINUTE_BITS)) << SESSION_BITS | payload.session_tag
    left, right = word >> 32, word & 0xFFFFFFFF
    for number in range(4):
        left, right = right, left ^ _round(secret, number, right)
    return left << 32 | right


def decipher(secret: bytes, tag: int) -> Payload:
    left, right = tag >> 32, tag & 0xFFFFFFFF
    for number in reversed(range(4)):
        left, right = right ^ _round(secret, number, left), left
    word = left << 32 | right
    return Payload(minute=word >> SESSION_BITS, session_tag=word & ((1 << SESSION_BITS) - 1))


def crc16(value: int, bits: int = TAG_BITS) -> int:
    """CRC-16/CCITT over the ``bits`` low bits of ``value``, most significant first."""
    crc = 0xFFFF
    for i in reversed(range(bits)):
        bit = (value >> i) & 1
        top = (crc >> 15) & 1
        crc = (crc << 1) & 0xFFFF
        if top ^ bit:
            crc ^= 0x1021
    return crc


def _to_bits(value: int, bits: int) -> np.ndarray:
    return np.array([(value >> i) & 1 for i in reversed(range(bits))], dtype=np.uint8)


def _from_bits(bits: np.ndarray) -> int:
    value = 0
    for bit in bits:
        value = value << 1 | int(bit)
    return value


def _parity(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for i in range(_K):
        out ^= (x >> i) & 1
    return out


_STATES = 1 << (_K - 1)
# For state s (the last K-1 input bits) and input bit b: the register (b << K-1 | s), the
# next state and the two output bits.
_REGISTER = np.array([[(b << (_K - 1)) | s for b in (0, 1)] for s in range(_STATES)])
_NEXT = _REGISTER >> 1
_OUTPUT = np.stack([_parity(_REGISTER & p) for p in _POLYS], axis=-1)  # (states, 2, 2)


def encode(tag: int) -> np.ndarray:
    """The ``CODED_BITS`` coded bits (0/1) for a 64-bit tag."""
    message = np.concatenate(
        [_to_bits(tag, TAG_BITS), _to_bits(crc16(tag), CRC_BITS), np.zeros(_K - 1, np.uint8)]
    )
    state, out = 0, []
    for bit in message:
        out.extend(_OUTPUT[state, bit])
        state = _NEXT[state, bit]
    return np.array(out, dtype=np.uint8)


def decode(soft: np.ndarray) -> int | None:
    """The tag from ``CODED_BITS`` soft values (positive means 1), or ``None`` when the
    CRC does not match (no mark, or too damaged)."""
    if soft.shape != (CODED_BITS,):
        raise ValueError(f"expected {CODED_BITS} soft values, got {soft.shape}")
    pairs = soft.reshape(-1, 2).astype(np.float64)
    signs = 2.0 * _OUTPUT - 1.0  # (states, 2 inputs, 2 outputs)
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    back = np.zeros((len(pairs), _STATES), dtype=np.int64)
    for step, pair in enumerate(pairs):
        gains = metric[:, None] + signs @ pair  # (states, inputs)
        candidates = np.full((_STATES, 2 * _STATES), -np.inf)
        flat_next = _NEXT.ravel()
        order = np.arange(2 * _STATES)
        candidates[flat_next, order] = gains.ravel()
        best = np.argmax(candidates, axis=1)
        metric = candidates[np.arange(_STATES), best]
        back[step] = best
    state, bits = 0, []
    for step in reversed(range(len(pairs))):
        source = back[step, state]
        bits.append(source % 2)
        state = source // 2
    message = _from_bits(np.array(bits[::-1][:MESSAGE_BITS]))
    tag, check = message >> CRC_BITS, message & 0xFFFF
    return tag if crc16(tag) == check else None

"""Machine-readable provenance: an invisible mark in every fused frame, and its verifier.

- ``payload``: the keyed 64-bit tag (installation, session, minute) and its coding;
- ``pattern``: the keyed tiled spread-spectrum pattern that carries it;
- ``mark``: embedding (the pipeline calls ``SessionMark.apply`` after the label);
- ``detect``: finding the mark in a cropped, scaled, re-encoded picture;
- ``verify``: pictures and clips in, findings out;
- ``keys``: ``PROVENANCE_KEY`` and key rotation.

See docs/provenance.md.
"""

from media_engine.provenance.keys import configured_keys, installation
from media_engine.provenance.mark import SessionMark
from media_engine.provenance.payload import session_tag


def session_mark(session_id: str | None) -> SessionMark:
    """The mark for one session's frames, with the current key."""
    key = configured_keys()[0]
    return SessionMark(key.secret, session_tag(key.secret, installation(), session_id or ""))

"""ICE details of the media engine.

aioice leaves loopback addresses out of its host candidates. On a machine whose only
interface is loopback (CI containers, the browser tests) the engine then offers no candidate
that the kiosk's browser can reach. The test-only setting ``MEDIA_ENGINE_LOOPBACK_CANDIDATES``
makes every peer connection of this process offer 127.0.0.1 as a host candidate too
(see DESIGN.md "ICE on loopback"). Never set it in production.
"""

import aioice.ice

LOOPBACK = "127.0.0.1"
_stock_get_host_addresses = aioice.ice.get_host_addresses


def _with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _stock_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if use_ipv4 and LOOPBACK not in addresses:
        addresses.insert(0, LOOPBACK)
    return addresses


def offer_loopback_candidates() -> None:
    """From now on this process's ICE agents also gather a 127.0.0.1 host candidate."""
    aioice.ice.get_host_addresses = _with_loopback


def loopback_candidates_offered() -> bool:
    return aioice.ice.get_host_addresses is _with_loopback

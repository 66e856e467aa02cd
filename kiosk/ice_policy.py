"""Which remote ICE candidates a kiosk may hand to a media worker (pure functions).

A candidate is an address the media worker will send STUN checks to. A client that could
name any address would make the worker probe hosts of its choice (its own subnet, the
loopback interface, a thousand addresses at once). So every candidate, in the offer's SDP
or trickled, is counted against one limit per call and its address checked here:

- an address inside ``KIOSK_NETWORKS`` (CIDRs) is allowed;
- when ``KIOSK_NETWORKS`` is set, nothing else is;
- when it is empty, any unicast address is allowed except loopback, link-local,
  unspecified, multicast and reserved ones, and the media workers' own networks
  (``MEDIA_WORKER_NETWORKS``);
- a host name (an mDNS ``.local`` name included) is never resolved: it is dropped.

Dropped candidates are not an error (browsers gather link-local and mDNS ones as a matter of
course): they are counted, left out, and the call goes on through the allowed ones and the
peer-reflexive path (the worker answers the kiosk's own checks at their real source).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_PORT = 65535
CANDIDATE_FIELDS = 8  # foundation component transport priority address port "typ" type


class CandidateError(ValueError):
    """A candidate line that is not one (the caller turns it into ``bad_sdp``/``bad_field``)."""


@dataclass(frozen=True)
class NetworkPolicy:
    allowed: tuple[IPNetwork, ...] = ()
    workers: tuple[IPNetwork, ...] = ()

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a host name: never resolved on the kiosk's behalf
        if any(ip in network for network in self.allowed if network.version == ip.version):
            return True
        if self.allowed:
            return False
        if any(ip in network for network in self.workers if network.version == ip.version):
            return False
        return not _special(ip)


def _special(ip: IPAddress) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return _special(mapped)
    return (
        ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved
    )


def parse_networks(text: str | list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """``"10.20.0.0/16, 127.0.0.0/8"`` -> networks; raises ValueError on a bad entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def policy_from_settings() -> NetworkPolicy:
    from django.conf import settings

    return NetworkPolicy(
        allowed=parse_networks(getattr(settings, "KIOSK_NETWORKS", ())),
        workers=parse_networks(getattr(settings, "MEDIA_WORKER_NETWORKS", ())),
    )


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        raise CandidateError(f"bad port {text[:12]!r}")
    port = int(text)
    if port > MAX_PORT:
        raise CandidateError(f"port {port} is out of range")
    return port


def candidate_address(line: str) -> tuple[str, int]:
    """The (address, port) of a candidate line (``candidate:...`` or ``a=candidate:...``)."""
    body = line.removeprefix("a=").removeprefix("candidate:")
    fields = body.split()
    if len(fields) < CANDIDATE_FIELDS or fields[6] != "typ":
        raise CandidateError("a candidate has 8 fields: ... address port typ type")
    if not fields[1].isascii() or not fields[1].isdigit() or len(fields[1]) > 3:
        raise CandidateError("bad component")
    if fields[2].lower() not in ("udp", "tcp"):
        raise CandidateError("transport must be udp or tcp")
    if not fields[3].isascii() or not fields[3].isdigit() or len(fields[3]) > 10:
        raise CandidateError("bad priority")
    address = fields[4]
    if len(address) > 255 or not address.isascii():
        raise CandidateError("bad address")
    return address, _port(fields[5])


@dataclass(frozen=True)
class FilteredSdp:
    sdp: str
    candidates: int  # every candidate line seen (kept + dropped): counts against the limit
    dropped: int


def filter_sdp_candidates(sdp: str, policy: NetworkPolicy) -> FilteredSdp:
    """The SDP without the candidates ``policy`` refuses; raises CandidateError on a bad one."""
    lines = sdp.split("\n")
    kept: list[str] = []
    seen = dropped = 0
    for raw in lines:
        line = raw.rstrip("\r")
        if line.startswith("a=candidate:"):
            seen += 1
            address, _ = candidate_address(line)
            if not policy.allows(address):
                dropped += 1
                continue
        kept.append(raw)
    return FilteredSdp(sdp="\n".join(kept), candidates=seen, dropped=dropped)

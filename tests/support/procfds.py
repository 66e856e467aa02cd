"""A process's open descriptors by kind, read from ``/proc`` (Linux): TCP sockets by what
they connect, so that a leak says what leaks. Used by bench/soak.py and the leak tests."""

from __future__ import annotations

import os
from pathlib import Path


def socket_kinds(pid: int) -> dict[str, str]:
    """Socket inode -> "listen", "accepted" (a client of one of the process's listening
    ports) or "out:<remote port>" (a connection the process opened: PostgreSQL, Redis...)."""
    rows = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            rows.append((fields[9], local, remote, fields[3] == "0A"))
    listening = {local for _, local, _, listen in rows if listen}
    kinds = {}
    for inode, local, remote, listen in rows:
        if listen:
            kinds[inode] = "listen"
        else:
            kinds[inode] = "accepted" if local in listening else f"out:{remote}"
    return kinds


def fd_kinds(pid: int) -> dict[str, int]:
    """Open descriptors of ``pid`` by kind (the socket table lists the whole network
    namespace; only the process's own descriptors are counted)."""
    sockets = socket_kinds(pid)
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while listed
        if target.startswith("socket:["):
            kind = sockets.get(target[8:-1], "socket")
        else:
            kind = target.split(":", 1)[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))

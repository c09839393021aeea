"""VNI discovery from the kernel's links (as FRR's advertise-all-vni): every VXLAN interface
that is up and enslaved to a bridge is a VNI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute

IFF_UP = 0x1


@dataclass(frozen=True, slots=True)
class VxlanPort:
    vni: int
    ifindex: int
    name: str
    local_ip: str | None
    bridge_ifindex: int
    bridge_name: str
    bridge_mac: str
    neigh_suppress: bool
    learning: bool
    #: The bridge's (the SVI's) addresses, "10.0.100.1/24".
    svi_addresses: tuple[str, ...] = ()
    #: The VRF device the bridge (the SVI) is enslaved to, and its routing table; None for the
    #: default VRF (main table).
    vrf: str | None = None
    vrf_table: int | None = None
    #: the vxlan device's MTU and the bridge's: what an inner frame may be (underlay.py)
    mtu: int = 1500
    bridge_mtu: int = 1500

    @property
    def problems(self) -> list[str]:
        """What FRR's reference set-up has and this port lacks (programmed anyway)."""
        out = []
        if not self.neigh_suppress:
            out.append("neigh_suppress is off: ARP/ND for remote hosts will cross the tunnel")
        if self.learning:
            out.append("learning is on: the kernel will learn remote MACs by itself")
        if self.local_ip is None:
            out.append("no local address on the vxlan device")
        return out


def _attr(message: Any, name: str) -> Any:
    return message.get_attr(name) if message is not None else None


def _vrf_of(links: dict[int, Any], device: Any) -> tuple[str | None, int | None]:
    """The VRF a device is enslaved to: (name, table), or (None, None) for the default VRF."""
    master = links.get(_attr(device, "IFLA_MASTER") or 0)
    info = _attr(master, "IFLA_LINKINFO")
    if _attr(info, "IFLA_INFO_KIND") != "vrf":
        return None, None
    table = _attr(_attr(info, "IFLA_INFO_DATA"), "IFLA_VRF_TABLE")
    return str(_attr(master, "IFLA_IFNAME")), int(table) if table is not None else None


def discover() -> tuple[dict[int, VxlanPort], list[str]]:
    """The VNIs the kernel has now, by VNI, and notes on anything odd (duplicate VNIs).

    pyroute2's IPRoute runs an event loop of its own, so call this outside ours (a thread)."""
    with IPRoute() as ipr:
        links = {m["index"]: m for m in ipr.get_links()}
        addr_messages = list(ipr.get_addr())
    addresses: dict[int, list[str]] = {}
    for message in addr_messages:
        address = _attr(message, "IFA_ADDRESS")
        if address is None or ipaddress.ip_address(address).is_link_local:
            continue
        addresses.setdefault(message["index"], []).append(f"{address}/{message['prefixlen']}")
    found: dict[int, VxlanPort] = {}
    notes: list[str] = []
    for index, message in links.items():
        info = _attr(message, "IFLA_LINKINFO")
        if _attr(info, "IFLA_INFO_KIND") != "vxlan":
            continue
        data = _attr(info, "IFLA_INFO_DATA")
        vni = _attr(data, "IFLA_VXLAN_ID")
        master = _attr(message, "IFLA_MASTER")
        bridge = links.get(master) if master else None
        if vni is None or bridge is None or not message["flags"] & IFF_UP:
            continue
        if _attr(_attr(bridge, "IFLA_LINKINFO"), "IFLA_INFO_KIND") != "bridge":
            continue
        slave = _attr(info, "IFLA_INFO_SLAVE_DATA")
        vrf_name, vrf_table = _vrf_of(links, bridge)
        port = VxlanPort(
            vni=int(vni),
            ifindex=index,
            name=str(_attr(message, "IFLA_IFNAME")),
            local_ip=_attr(data, "IFLA_VXLAN_LOCAL") or _attr(data, "IFLA_VXLAN_LOCAL6"),
            bridge_ifindex=int(master),
            bridge_name=str(_attr(bridge, "IFLA_IFNAME")),
            bridge_mac=str(_attr(bridge, "IFLA_ADDRESS")),
            neigh_suppress=bool(_attr(slave, "IFLA_BRPORT_NEIGH_SUPPRESS")),
            learning=bool(_attr(slave, "IFLA_BRPORT_LEARNING")),
            svi_addresses=tuple(addresses.get(int(master), ())),
            vrf=vrf_name,
            vrf_table=vrf_table,
            mtu=int(_attr(message, "IFLA_MTU") or 1500),
            bridge_mtu=int(_attr(bridge, "IFLA_MTU") or 1500),
        )
        if port.vni in found:
            notes.append(
                f"VNI {port.vni} is on both {found[port.vni].name} and {port.name}; "
                f"using {found[port.vni].name}"
            )
            continue
        found[port.vni] = port
    return found, notes

"""The kernel side: VNI discovery, the FDB / flood / neighbour entries that remote routes need,
local MACs and MAC/IP bindings that become routes, and reconciliation. pyroute2 (and raw
netlink) live here only."""

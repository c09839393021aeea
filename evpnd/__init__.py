"""evpnd: a BGP EVPN speaker for Linux VXLAN VTEPs."""

__version__ = "0.1.0"

"""What this VTEP originates, and the rules for its local MACs — no I/O.

`origination.py` turns the configuration and the VNIs the kernel has into Type 2 (static MACs),
Type 3 and Type 5 routes; `learning.py` turns what the kernel says of local MACs and MAC/IP
bindings into Type 2 routes, with RFC 7432 §15 mobility (sequence numbers, sticky MACs) and
duplicate detection (`duplicates.py`); `attributes.py` is the one place local routes' path
attributes are built. Inputs are observations, RIB changes and `now`; outputs are RIB updates
and events (`evpnd.events`) for the daemon to apply and report."""

"""The control socket and its client, evpnctl."""

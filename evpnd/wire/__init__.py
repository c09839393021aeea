"""What every part of the wire codec shares and nothing else: BGP's numbers (message types,
error codes, attribute type codes) and decode errors as values (RFC 7606). The lowest layer:
`evpn` and `bgp` both build on it, and it imports neither."""

"""EVPN data: route distinguishers, ESIs, extended communities and the five route types."""

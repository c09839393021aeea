"""BGP wire codec: framing, messages, capabilities and path attributes.

Nothing in this package performs I/O or reads a clock: it turns bytes into values and values into
bytes, so that every behaviour can be tested with vectors.
"""

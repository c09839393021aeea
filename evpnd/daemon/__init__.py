"""The asyncio shell: sockets, timers, signals and the control socket around the sans-I/O core."""

"""A RIB for unit tests that hands its best-path changes on at once, to followers given in
order — what the daemon's `settle` does after each change, without a daemon."""

from __future__ import annotations

from collections.abc import Callable

from evpnd.rib.locrib import Rib, RouteChange


class FollowedRib(Rib):
    def __init__(self) -> None:
        super().__init__()
        self.followers: list[Callable[[list[RouteChange]], None]] = []

    def follow(self, follower: Callable[[list[RouteChange]], None]) -> None:
        self.followers.append(follower)

    def _tell(self, changes: list[RouteChange]) -> None:
        super()._tell(changes)
        taken = self.take_changes()
        if taken:
            for follower in self.followers:
                follower(taken)

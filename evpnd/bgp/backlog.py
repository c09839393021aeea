"""What one peer may have waiting to be written to it, sans I/O: ROUTE-REFRESH answers
coalesced, and a bound on the bytes queued.

A peer that asks for our table again and again and never reads must not make us hold a copy
of the answer per request. RFC 2918 asks only that the peer gets our Adj-RIB-Out again after
it asked; so per AFI/SAFI one answer at a time is all it needs:

- a request while an answer is waiting and not a byte of it written yet changes nothing (the
  whole answer still reaches the peer, after the request);
- a request while an answer is being written (part of it left already) asks for one more after
  it, never more than one;
- the shell tells the core when an answer has left (`answer_written`): the next one may start.

The shell measures the bytes waiting for the peer (the transport's buffer plus the chunks
queued for it) and hands the number in (`measured`); above the bound the peer is dropped with
Cease / Out of Resources (RFC 4486). Memory per peer is then at most the bound, whatever it
sends."""

from __future__ import annotations

from enum import Enum

#: bytes queued for one peer above which it is dropped: a million Type 2 routes are about
#: 40 MB of UPDATEs, so a peer that joins late (or asks for the table) with a million routes
#: in it fits, with room for the changes that follow
DEFAULT_LIMIT = 64 * 1024 * 1024

Family = tuple[int, int]


class Answer(Enum):
    """What a ROUTE-REFRESH calls for."""

    #: build and send an answer now
    START = "start"
    #: nothing: an answer that has not started leaving will reach the peer after its request
    COALESCED = "coalesced"
    #: one more answer when the one leaving now has left (asked for once, whatever the count)
    AFTER = "after"


class Backlog:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        #: per family: an answer is queued (False) or partly written (True)
        self._answering: dict[Family, bool] = {}
        self._again: set[Family] = set()
        #: requests that changed nothing (metrics, `show peers`)
        self.coalesced = 0
        #: the bytes last measured, and the most seen in this session
        self.queued = 0
        self.worst = 0

    def reset(self) -> None:
        """A new session: nothing is queued or pending."""
        self._answering.clear()
        self._again.clear()
        self.queued = 0
        self.worst = 0

    def requested(self, family: Family) -> Answer:
        """A ROUTE-REFRESH (subtype 0) for `family` arrived."""
        started = self._answering.get(family)
        if started is None:
            self._answering[family] = False
            return Answer.START
        if started and family not in self._again:
            self._again.add(family)
            return Answer.AFTER
        self.coalesced += 1
        return Answer.COALESCED

    def answer_started(self, family: Family) -> None:
        """The first bytes of the answer went to the socket: a request from now on may have
        missed what left before it."""
        if family in self._answering:
            self._answering[family] = True

    def answer_written(self, family: Family) -> bool:
        """The answer has left; True: another one was asked for meanwhile (start it)."""
        if family in self._again:
            self._again.discard(family)
            self._answering[family] = False
            return True
        self._answering.pop(family, None)
        return False

    def answering(self, family: Family) -> bool:
        return family in self._answering

    def measured(self, queued: int) -> bool:
        """The bytes waiting for the peer now; True: over the bound."""
        self.queued = queued
        if queued > self.worst:
            self.worst = queued
        return queued > self.limit

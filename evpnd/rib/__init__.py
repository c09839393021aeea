"""The routing information bases: one Loc-RIB is the single truth; Adj-RIB-In per source and
Adj-RIB-Out per peer hang off it. No I/O here either."""

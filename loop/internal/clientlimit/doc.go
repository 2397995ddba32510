// Package clientlimit holds the per-client limits of a server's accept and
// handshake path: open connections per client address, handshakes per
// second per client address (a token bucket), and a global cap on
// handshakes in progress; and the resolution of the client address behind
// trusted proxies (X-Forwarded-For or Forwarded, rightmost untrusted
// address).
//
// A "client address" is the source address grouped by prefix: an IPv4
// address by itself (/32) and an IPv6 address by its /64, the block one
// subscriber usually gets, so that one host cannot take a fresh address
// per connection; both prefixes are configurable. An IPv4-mapped IPv6
// address counts as its IPv4 address.
//
// A Limiter is shared by all the loops of a server and is safe for
// concurrent use: with SO_REUSEPORT the connections of one client land on
// any loop, so a per-loop count would let a client hold loops times its
// limit. It is split into shards by address hash, each behind its own
// mutex, held for one table probe; the handshake gate is one atomic
// counter. Nothing allocates per check once the table has grown to its
// working size.
//
// Memory is bounded under a flood of distinct addresses: at most
// Config.MaxTracked addresses are tracked (about 50 bytes each at the
// most). An address that has no connection open and a full token bucket
// carries no state and is dropped when its room is needed. When the table
// is full, a new address takes the room of the least recently limited
// address among up to 64 candidates (in a rotating scan) that has no
// connection open, which only refills that address's bucket early. When
// all of them hold connections, the new address is admitted untracked:
// no per-address limit applies to it, the global connection and
// handshake caps still do. Failing open there keeps the server reachable
// for real clients while someone holds connections from MaxTracked
// distinct addresses (a number beyond which per-address limits no longer
// protect capacity anyway); size MaxTracked above the number of distinct
// clients expected at once.
package clientlimit

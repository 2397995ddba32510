// Package codec holds the byte-level rules of RFC 6455: frame headers, masking,
// incremental UTF-8 validation, close frames and the HTTP/1.1 upgrade handshake.
//
// Everything here is a pure function over byte slices (sans-I/O): nothing reads
// a socket, blocks, or starts a goroutine, and the per-frame paths allocate
// nothing. Parsers never read past the slice they are given; when the bytes end
// early they say how to continue instead of waiting for more.
//
// Users of wsloop normally never import codec: package session drives it.
package codec

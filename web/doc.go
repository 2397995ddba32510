// Package web serves static files for the plain HTTP side of a wsloop port:
// the requests that do not ask for a WebSocket upgrade.
//
// A Handler serves the files of one directory tree (or any fs.FS, such as an
// embed.FS). It is deliberately small and strict: GET and HEAD only, the
// index.html of a directory and never a listing, and nothing outside the
// root, whatever the request path spells (.., %2e%2e, backslashes) and
// wherever a symbolic link points. It also answers /healthz.
package web

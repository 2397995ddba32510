// Package bridge connects wsloop to programs in any language, on the port
// that also serves the pages: a program per connection (Exec, websocketd's
// model), one shared backend for all connections (Backend, a JSON-lines
// protocol over a pipe or a Unix socket), and CGI/1.1 scripts for plain
// HTTP (CGI, through net/http/cgi). Console is a developer page for talking
// to the bridged paths by hand. The bridges use only wsloop's public API: a
// route's session.UpgradeFunc (Exec.Upgrade, Backend.Upgrade), the
// session.Handler it chooses, session.Handle tasks and loop.Room.
//
// # A program per connection (Exec)
//
// Each connection starts the program once it is open, in a process group of
// its own, with wsloop's working directory (or ExecOptions.Dir) and this
// environment: the CGI/1.1 variables GATEWAY_INTERFACE=CGI/1.1,
// SERVER_SOFTWARE=wsloop, SERVER_PROTOCOL, SERVER_NAME and SERVER_PORT (from
// the Host header; 80 or 443 when it has no port), REQUEST_METHOD,
// REQUEST_URI, SCRIPT_NAME and PATH_INFO (PATH_INFO is what follows
// ExecOptions.ScriptName in the path, empty for an exact route),
// QUERY_STRING, REMOTE_ADDR, REMOTE_HOST (the address: no lookups),
// REMOTE_PORT, HTTPS=on when the server serves TLS, one HTTP_* per request
// header (HTTP_X_FORWARDED_FOR, ...; Proxy is skipped), then PATH and the
// variables named in PassEnv from wsloop's environment, then Env. Nothing
// else of wsloop's environment is passed.
//
// Text mode (the default): each message is written to stdin as its bytes
// and a '\n' (a newline inside a message is not escaped, as in websocketd);
// each line of stdout is sent as one text message without its "\n" or
// "\r\n" (invalid UTF-8 becomes U+FFFD, a line over MaxLine is sent in
// pieces cut at rune boundaries, a last line without a newline is sent at
// EOF). Binary mode: messages are written as they are, and what each read
// of stdout returns (up to 64 KiB) is one binary message. Each stderr line
// is logged at Warn with the path, the client's address and the pid.
//
// The program's exit closes the connection after its last output (once its
// stdout has reached EOF: what it left running and writing there counts as
// its output until the client leaves): 1000 for
// exit status 0, 1011 otherwise (the reason says "program exit status 3" or
// "program signal: segmentation fault"); whatever it left running in its
// process group is killed. When the client goes first, stdin is closed; the
// group gets SIGTERM TermDelay (1 s) later and SIGKILL KillDelay (2 s) after
// that, unless the program has exited; stdout is read and discarded
// meanwhile so that a program finishing up is not blocked. A Limit caps the
// programs running at once: an upgrade past it gets 503 with Retry-After
// (counted), and one that lost a race for the last place after its upgrade
// is closed with 1013.
//
// Buffering is bounded both ways. Towards the client, the bridge reads the
// program's stdout only while the connection takes messages: its
// connections get their own session.Config (through session.Accept.Config:
// ExecOptions.Config, usually the server's, with Overflow set to
// session.OverflowError), so once the client's unsent bytes reach HighWater
// c.Send reports session.ErrBackpressure, reading stops and the program
// blocks on the full pipe, and reading resumes at the connection's OnDrain.
// The bridge holds at most its one read buffer (64 KiB, up to MaxLine for a
// long line). Towards the program, messages wait in a queue of StdinBuffer
// bytes (64 KiB); a message that does not fit while the program is not
// reading closes the connection with 1008 ("the program is not reading its
// input"), counted in ExecStats.Overflows. Messages that arrive after the
// program closed its stdin are dropped and counted.
//
// What a connection costs: a process (measured with TestMeasure: the C
// echo example 1.26 MB of RSS, of which 106 KiB are its own, PSS, the rest
// shared libraries; the shell echo 1.67 MB, 116 KiB PSS) and, in wsloop,
// about 26 KiB: three goroutines (one per pipe: stdout and the exit, stdin,
// stderr) parked in Go's poller while idle (os.Pipe descriptors are
// non-blocking), their buffers and three descriptors. Serving the pipes from
// wsloop's event loops would save most of those 26 KiB, a fraction of the
// process beside them, and would need an engine API for foreign
// descriptors; goroutines are the honest trade here.
//
// # One shared backend (Backend)
//
// A Backend is one long-running program that wsloop starts with its stdin
// and stdout as the two directions of the protocol (stderr goes to the log),
// or a peer listening on a Unix socket that wsloop connects to. Events
// flow from wsloop to the backend and commands back, one JSON object per
// line ("\n"; a "\r" before it is ignored).
//
// Events (wsloop to backend). Their fields come in this order, "event" and
// "id" first, so that line-oriented tools can handle them without a JSON
// parser (see examples/backend/broadcast.sh):
//
//	{"event":"hello","version":1,"restarts":0}
//	{"event":"open","id":"12.3","path":"/ws/chat","query":"room=a","remote":"127.0.0.1:50312","headers":{"Host":"example.com","Origin":"https://example.com",...}}
//	{"event":"message","id":"12.3","text":"hi"}
//	{"event":"message","id":"12.3","binary":"AAEC"}
//	{"event":"close","id":"12.3","code":1000,"reason":"bye"}
//
// hello comes first from every backend instance, with restarts counting the
// instances before it: a hello means that no connection is open for the
// backend, so it starts from a fresh state. id is an opaque string naming
// one connection while it is open (it is never reused for another). headers
// has the request headers named in BackendOptions.Headers that the request
// has, first value only (by default Origin, User-Agent, Cookie,
// Authorization, X-Forwarded-For, X-Real-Ip, Sec-Websocket-Protocol and
// Accept-Language; ["*"] passes every header, repeated ones joined with
// ", "). remote is the peer's address ("" with
// BackendOptions.NoRemoteAddr). binary is standard base64 with padding. close reports the client's
// close code and reason as wsloop saw them: 1005 when its close frame had
// no code, 1006 when the connection went without a close frame. Events
// carry valid UTF-8 (invalid bytes in paths or headers become U+FFFD).
//
// Commands (backend to wsloop), fields in any order, unknown fields
// ignored:
//
//	{"cmd":"send","id":"12.3","text":"hello"}          (or "binary":"<base64>")
//	{"cmd":"broadcast","text":"to every connection of this backend"}
//	{"cmd":"join","id":"12.3","room":"lobby"}
//	{"cmd":"leave","id":"12.3","room":"lobby"}
//	{"cmd":"publish","room":"lobby","text":"to every member"}
//	{"cmd":"close","id":"12.3","code":4000,"reason":"bye"}
//
// Commands take effect in order. Rooms exist while they have members, and
// a connection leaves its rooms when it closes. close takes code 1000
// (the default), 1001, 1008, 1011, 1012, 1013 or 3000-4999. A line that is
// not a valid command is logged (the first ten, then every 1000th) and
// counted in BackendStats.BadCommands; the backend goes on. A command for an
// id that names no open connection (it closed meanwhile) does nothing; such
// a send is counted in BackendStats.Dropped, as is a send refused by a
// connection over its high-water mark: the backend is never held up by one
// slow client, which gets the server's session.Config.Overflow policy.
//
// Bounds. Events wait in one queue of QueueBytes (4 MiB) while the backend
// does not read. At the bound an upgrade is refused with 503 (1013 if the
// queue filled between the upgrade and the open, in which case the backend
// hears nothing of the connection), and a connection whose message finds
// the queue full is closed with 1013 ("the backend is too slow"), the
// message undelivered; both are counted (Refused, Overloaded). Close events
// are never refused, so the backend learns of every connection it was told
// about leaving: they may take the queue past its bound by one event per
// open connection. Command lines longer than the longest valid command
// (about 6 x MaxMessage) are skipped and counted as bad.
//
// When the backend goes (the program exits or closes its stdout, a write
// to it fails, the socket breaks), every connection it was told about is
// closed with 1012 ("the backend is restarting"), events still queued are
// dropped, rooms are forgotten, and upgrades get 503 until a new instance
// runs. A program is then started again, or the socket dialled again, after
// RestartMin (100 ms) doubling to RestartMax (10 s); the wait starts over
// once an instance has run for 10 s. Backend.Close stops the program (stdin
// closed, SIGTERM and SIGKILL after TermDelay and KillDelay), closes what
// connections remain with 1001, and returns when every goroutine and
// descriptor of the Backend is gone. Nothing waits without a bound on the
// backend: writes to it unblock when the link is closed.
//
// Memory: the bridge keeps no map from connection to anything. A
// connection is a 24-byte entry in a chunked slab (its slot and the slot's
// generation are its id), pointed to by its session.Conn's Value; the open
// event is prepared during the upgrade and dropped once queued; only
// connections that joined a room cost a map entry more. A Backend costs three
// goroutines (supervisor, event writer, command reader), two more for a
// program (its stderr, its exit), whatever the number of connections.
//
// # CGI
//
// CGI serves a directory's executables through net/http/cgi as
// loop.Options.HTTP (or part of it), so that static files, CGI scripts and
// WebSockets share one port; see CGI for what it refuses.
package bridge

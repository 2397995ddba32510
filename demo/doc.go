// Package demo holds the demo applications of the wsloop binary, written
// only against session.Handler, session.Handle, loop.Room and bus.Rooms, so
// they run unchanged on every engine, and across processes when
// Options.Bus is set (a chat room and the push feed then span every process
// on the bus):
//
//   - /ws/echo: every message comes back as it was sent.
//   - /ws/chat?room=NAME&nick=NICK: chat rooms; each text message is sent to
//     everyone in the room as "nick: text".
//   - /ws/push: server push; a simulated sensor reading, as JSON, to every
//     subscriber once a second.
//   - /sse/push, /sse/chat and POST /sse/chat/send: the feed and the rooms
//     over Server-Sent Events, served on the loops (Demo.LoopHTTP), for
//     clients whose network blocks the upgrade (see sse.go).
//
// A Router picks the application by path during the upgrade (with an Origin
// allow-list), and Demo.Page serves the embedded browser page that uses all
// three. Loaded with ?selftest=1, the page exercises echo, chat and push by
// itself and shows the verdict; the headless-Chromium test relies on it.
package demo

// Package bus spreads rooms and broadcasts over several processes through a
// message bus.
//
// A Bus is the small interface the rest of wsloop needs from a message bus:
// publish a payload with its opcode to a topic, subscribe to a topic with a
// callback, close. Memory is an in-process implementation (a set of Buses
// inside one process, for tests and for single-process servers that want
// the same code path); package bus/natsbus is the NATS one, and package
// bus/natsserver runs an embedded NATS server for a group of worker
// processes on one machine.
//
// Rooms are named rooms of WebSocket connections and event streams that span
// processes: each process keeps one loop.Room per room with local members
// and one bus subscription for it (made on the first local member,
// cancelled with the last). A message published in a room is handed to the
// local members at once and crosses the bus once per other process, where
// it is encoded once per format and fanned out by the event loops.
// Broadcast does the same for every connection of every process.
//
// With a nil Bus, Rooms and Broadcast serve this process only, exactly as a
// loop.Room and loop.Server.Broadcast do.
package bus

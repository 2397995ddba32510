// Package natsbus is a bus.Bus on NATS (github.com/nats-io/nats.go): one
// connection per process, one NATS subscription per topic with local
// subscribers, messages published with NoEcho so that a process never
// hears its own.
//
// # Wire format
//
// A topic becomes the subject Prefix + topic, with every byte outside
// A-Z a-z 0-9 and - written as _XX (hex), except dots that separate two
// non-empty parts, so "room.lobby" is "wsloop.room.lobby" and "a b" is
// "wsloop.a_20b". A message's payload is one byte of opcode (1 text,
// 2 binary) followed by the WebSocket message: any NATS client can publish
// to or read a wsloop topic.
//
// # What never blocks, and what is bounded
//
// Publish copies the message into the outbox (Options.Outbox messages) and
// returns; one goroutine hands the outbox to nats.go in order. A full outbox
// drops the message and counts it (bus.ErrDropped). While the connection is
// down nats.go keeps up to Options.ReconnectBuffer bytes of publishes and
// sends them after reconnecting; what does not fit is dropped and counted.
// Subscribe and cancel change a table and return; the same goroutine brings
// the NATS subscriptions in line. Incoming messages wait in a channel of
// Options.Inbox messages for the delivery goroutine; when it is full, NATS
// drops them (a slow consumer) and they are counted.
//
// The connection reconnects forever, every Options.ReconnectWait; nats.go
// resubscribes every topic on its own. Messages published by other
// processes while this one is disconnected are not delivered here (at most
// once).
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsloop/wsloop/bus"
	"github.com/wsloop/wsloop/session"
)

// Defaults of Options.
const (
	DefaultPrefix          = "wsloop."
	DefaultOutbox          = 8192
	DefaultInbox           = 8192
	DefaultReconnectBuffer = 1 << 20
	DefaultReconnectWait   = 250 * time.Millisecond
	DefaultConnectTimeout  = 5 * time.Second
	DefaultPingInterval    = 10 * time.Second
)

// Options configure a Bus. The zero value means the defaults.
type Options struct {
	// Name is the connection's name in the server's monitoring; default
	// "wsloop".
	Name string
	// Prefix is put before every subject; default "wsloop.". Processes
	// share topics only when they share the prefix.
	Prefix string
	// Outbox bounds the messages waiting to be handed to nats.go; default
	// 8192.
	Outbox int
	// ReconnectBuffer bounds the bytes of publishes kept while disconnected;
	// default 1 MiB. Negative: none are kept.
	ReconnectBuffer int
	// Inbox bounds the messages received and not yet handed to their
	// handlers; default 8192.
	Inbox int
	// ReconnectWait is the pause between reconnect attempts (plus up to
	// 100 ms of jitter); default 250 ms.
	ReconnectWait time.Duration
	// ConnectTimeout bounds the first connect; default 5 s. A server that
	// cannot be reached then is an error of Connect.
	ConnectTimeout time.Duration
	// PingInterval is how often the client pings the server; two pings
	// without an answer count as a disconnect. Default 10 s.
	PingInterval time.Duration
	// Logger receives disconnects, reconnects and slow-consumer warnings;
	// default slog.Default().
	Logger *slog.Logger
}

// Bus is a bus.Bus on one NATS connection.
type Bus struct {
	nc     *nats.Conn
	prefix string
	log    *slog.Logger

	out   chan outMsg    // the outbox
	in    chan *nats.Msg // shared by every NATS subscription
	wake  chan struct{}  // subscription changes are waiting
	done  chan struct{}  // closed by Close
	wg    sync.WaitGroup // the outbox and delivery goroutines
	bufs  sync.Pool      // *[]byte: an opcode and a copy of the payload
	close sync.Once

	subjMu   sync.RWMutex
	subjects map[string]string // topic -> subject, for the first maxCachedSubjects topics

	mu      sync.Mutex
	closed  bool
	topics  map[string]*topic   // by subject
	dirty   map[string]struct{} // subjects whose NATS subscription may be out of line
	changes uint64              // subscription changes made
	applied uint64              // of those, brought in line by the outbox goroutine
	synced  chan struct{}       // closed (and replaced) whenever applied moves
	goneIn  uint64              // incoming drops of cancelled NATS subscriptions

	published, received, droppedOut, disconnects, reconnects atomic.Uint64
}

type topic struct {
	handlers []*handler         // copy on write: delivery reads a snapshot
	sub      *nats.Subscription // nil until subscribed
}

type handler struct{ h bus.Handler }

type outMsg struct {
	subject string
	buf     *[]byte
}

// Connect connects to the NATS server(s) at url (comma-separated for a
// cluster: nats://a:4222,nats://b:4222) and returns the process's Bus.
func Connect(url string, opts Options) (*Bus, error) {
	if opts.Name == "" {
		opts.Name = "wsloop"
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Outbox <= 0 {
		opts.Outbox = DefaultOutbox
	}
	if opts.Inbox <= 0 {
		opts.Inbox = DefaultInbox
	}
	if opts.ReconnectBuffer == 0 {
		opts.ReconnectBuffer = DefaultReconnectBuffer
	}
	if opts.ReconnectWait <= 0 {
		opts.ReconnectWait = DefaultReconnectWait
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Bus{
		prefix:   opts.Prefix,
		log:      opts.Logger,
		out:      make(chan outMsg, opts.Outbox),
		in:       make(chan *nats.Msg, opts.Inbox),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		topics:   make(map[string]*topic),
		subjects: make(map[string]string),
		dirty:    make(map[string]struct{}),
		synced:   make(chan struct{}),
	}
	b.bufs.New = func() any { s := make([]byte, 0, 256); return &s }
	nc, err := nats.Connect(url,
		nats.Name(opts.Name),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(opts.ReconnectBuffer),
		nats.Timeout(opts.ConnectTimeout),
		nats.PingInterval(opts.PingInterval),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case <-b.done: // our own Close
				return
			default:
			}
			b.disconnects.Add(1)
			b.log.Warn("bus: NATS disconnected; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.reconnects.Add(1)
			b.log.Info("bus: NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.log.Warn("bus: incoming messages dropped: the handlers are slower than the bus", "inbox", opts.Inbox)
				return
			}
			b.log.Warn("bus: NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("bus: connecting to NATS at %s: %w (is the server running? -nats takes nats://host:port)", url, err)
	}
	b.nc = nc
	b.wg.Add(2)
	go b.sendLoop()
	go b.deliverLoop()
	return b, nil
}

// Subject returns the NATS subject of topic under b's prefix.
func (b *Bus) Subject(topic string) string {
	b.subjMu.RLock()
	s, ok := b.subjects[topic]
	b.subjMu.RUnlock()
	if ok {
		return s
	}
	s = b.prefix + encodeTopic(topic)
	b.subjMu.Lock()
	if len(b.subjects) < maxCachedSubjects {
		b.subjects[topic] = s
	}
	b.subjMu.Unlock()
	return s
}

// maxCachedSubjects bounds the topic-to-subject cache, which spares
// Publish an allocation per message for the topics in use.
const maxCachedSubjects = 4096

// Publish implements bus.Bus.
func (b *Bus) Publish(topic string, op session.Opcode, p []byte) error {
	if err := bus.CheckTopic(topic); err != nil {
		return err
	}
	select {
	case <-b.done:
		return bus.ErrClosed
	default:
	}
	buf := b.bufs.Get().(*[]byte)
	*buf = append(append((*buf)[:0], byte(op)), p...)
	select {
	case b.out <- outMsg{subject: b.Subject(topic), buf: buf}:
		return nil
	default:
		b.bufs.Put(buf)
		b.droppedOut.Add(1)
		return bus.ErrDropped
	}
}

// Subscribe implements bus.Bus.
func (b *Bus) Subscribe(topicName string, h bus.Handler) (func(), error) {
	if err := bus.CheckTopic(topicName); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, bus.ErrNilHandler
	}
	subject := b.Subject(topicName)
	hd := &handler{h}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, bus.ErrClosed
	}
	t := b.topics[subject]
	if t == nil {
		t = &topic{}
		b.topics[subject] = t
	}
	t.handlers = append(append([]*handler(nil), t.handlers...), hd)
	b.changedLocked(subject)
	var once sync.Once
	return func() { once.Do(func() { b.cancel(subject, hd) }) }, nil
}

func (b *Bus) cancel(subject string, hd *handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[subject]
	if t == nil || b.closed {
		return
	}
	hs := make([]*handler, 0, len(t.handlers))
	for _, o := range t.handlers {
		if o != hd {
			hs = append(hs, o)
		}
	}
	t.handlers = hs
	b.changedLocked(subject)
}

// changedLocked marks subject for the outbox goroutine.
func (b *Bus) changedLocked(subject string) {
	b.dirty[subject] = struct{}{}
	b.changes++
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// sendLoop hands the outbox to nats.go and brings the NATS subscriptions in
// line with the table. It is the only goroutine that calls nats.go's
// publish and subscribe, which may wait on a slow socket.
func (b *Bus) sendLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-b.out:
			b.send(m)
		case <-b.wake:
			b.reconcile()
		}
	}
}

func (b *Bus) send(m outMsg) {
	if err := b.nc.Publish(m.subject, *m.buf); err != nil {
		b.droppedOut.Add(1)
		if !errors.Is(err, nats.ErrReconnectBufExceeded) {
			b.log.Debug("bus: publish failed", "subject", m.subject, "err", err)
		}
	} else {
		b.published.Add(1)
	}
	if cap(*m.buf) <= 64<<10 { // keep the pool to ordinary sizes
		b.bufs.Put(m.buf)
	}
}

func (b *Bus) reconcile() {
	b.mu.Lock()
	changes := b.changes
	dirty := b.dirty
	b.dirty = make(map[string]struct{})
	type op struct {
		subject string
		t       *topic
		sub     bool // subscribe; else unsubscribe
	}
	var ops []op
	for subject := range dirty {
		t := b.topics[subject]
		switch {
		case t == nil:
		case len(t.handlers) > 0 && t.sub == nil:
			ops = append(ops, op{subject, t, true})
		case len(t.handlers) == 0:
			delete(b.topics, subject)
			if t.sub != nil {
				ops = append(ops, op{subject, t, false})
			}
		}
	}
	b.mu.Unlock()

	// nats.go calls happen without b.mu: they may wait on the socket.
	var retry []string
	for _, o := range ops {
		if o.sub {
			s, err := b.nc.ChanSubscribe(o.subject, b.in)
			b.mu.Lock()
			switch {
			case err != nil:
				b.log.Warn("bus: subscribe failed; retrying", "subject", o.subject, "err", err)
				retry = append(retry, o.subject)
			case b.topics[o.subject] != o.t:
				// cancelled and removed meanwhile: undo
				_ = s.Unsubscribe()
			default:
				o.t.sub = s
				if len(o.t.handlers) == 0 { // cancelled meanwhile: the next pass removes it
					b.dirty[o.subject] = struct{}{}
				}
			}
			b.mu.Unlock()
			continue
		}
		if n, err := o.t.sub.Dropped(); err == nil && n > 0 {
			b.mu.Lock()
			b.goneIn += uint64(n)
			b.mu.Unlock()
		}
		if err := o.t.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Debug("bus: unsubscribe failed", "subject", o.subject, "err", err)
		}
	}

	b.mu.Lock()
	for _, s := range retry {
		b.dirty[s] = struct{}{}
	}
	if len(b.dirty) > 0 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	if len(retry) == 0 && changes > b.applied {
		b.applied = changes
		close(b.synced)
		b.synced = make(chan struct{})
	}
	b.mu.Unlock()
	if len(retry) > 0 {
		// A failed subscribe (connection closed or not yet up) is retried
		// after a pause rather than in a tight loop.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-b.done:
		}
	}
}

// deliverLoop runs the handlers, one message at a time.
func (b *Bus) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-b.in:
			b.deliver(m)
		}
	}
}

func (b *Bus) deliver(m *nats.Msg) {
	if len(m.Data) == 0 {
		return // not ours: a wsloop message has at least its opcode
	}
	b.mu.Lock()
	var hs []*handler
	if t := b.topics[m.Subject]; t != nil {
		hs = t.handlers
	}
	b.mu.Unlock()
	if len(hs) == 0 {
		return
	}
	op, p := session.Opcode(m.Data[0]), m.Data[1:]
	for _, h := range hs {
		h.h(op, p)
	}
	b.received.Add(1)
}

// Sync returns when every Subscribe and cancel made before it is in force
// at the server (or ctx is done): what other processes publish after that
// reaches these subscriptions.
func (b *Bus) Sync(ctx context.Context) error {
	b.mu.Lock()
	want := b.changes
	for b.applied < want && !b.closed {
		ch := b.synced
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return bus.ErrClosed
	}
	return b.nc.FlushWithContext(ctx)
}

// Close implements bus.Bus.
func (b *Bus) Close() error {
	err := bus.ErrClosed
	b.close.Do(func() {
		err = nil
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.done)
		b.wg.Wait()
		b.nc.Close()
	})
	return err
}

// Connected reports whether the connection to NATS is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Stats returns the bus's counters.
func (b *Bus) Stats() bus.Stats {
	b.mu.Lock()
	in := b.goneIn
	subs := 0
	for _, t := range b.topics {
		if t.sub != nil {
			subs++
			if n, err := t.sub.Dropped(); err == nil {
				in += uint64(n)
			}
		}
	}
	b.mu.Unlock()
	return bus.Stats{
		Published:     b.published.Load(),
		Received:      b.received.Load(),
		DroppedOut:    b.droppedOut.Load(),
		DroppedIn:     in,
		Subscriptions: subs,
		Connected:     b.nc.IsConnected(),
		Disconnects:   b.disconnects.Load(),
		Reconnects:    b.reconnects.Load(),
	}
}

// encodeTopic makes topic a valid string of NATS subject tokens (see the
// package doc). It is injective: decoding is a function.
func encodeTopic(topic string) string {
	ok := true
	for i := 0; i < len(topic) && ok; i++ {
		ok = plain(topic, i)
	}
	if ok {
		return topic
	}
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(topic) + 8)
	for i := 0; i < len(topic); i++ {
		if plain(topic, i) {
			sb.WriteByte(topic[i])
			continue
		}
		c := topic[i]
		sb.WriteByte('_')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// plain reports whether byte i of s stands for itself in a subject: a
// letter, digit or '-', or a '.' between two non-dot bytes.
func plain(s string, i int) bool {
	c := s[i]
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		return true
	case c == '.':
		return i > 0 && i < len(s)-1 && s[i-1] != '.' && s[i+1] != '.'
	}
	return false
}

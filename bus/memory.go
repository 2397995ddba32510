package bus

import (
	"sync"
	"sync/atomic"

	"github.com/wsloop/wsloop/session"
)

// DefaultMemoryInbox is how many messages a Memory node holds for its
// handlers before it drops (and counts) the next ones.
const DefaultMemoryInbox = 1024

// Memory is a message bus inside one process: every Node connected to it
// stands for one process, and a message published on a Node reaches the
// subscribers of the other Nodes. It behaves as the NATS bus does, delivery
// goroutine and bounded inbox included, so code tested on it runs unchanged
// over NATS.
type Memory struct {
	inbox int

	mu    sync.Mutex
	nodes map[*Node]struct{}
}

// NewMemory returns an empty in-process bus whose nodes hold up to inbox
// undelivered messages each (DefaultMemoryInbox when inbox <= 0).
func NewMemory(inbox int) *Memory {
	if inbox <= 0 {
		inbox = DefaultMemoryInbox
	}
	return &Memory{inbox: inbox, nodes: make(map[*Node]struct{})}
}

// Node is one process's Bus on a Memory.
type Node struct {
	m       *Memory
	inbox   chan memMsg
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when the delivery goroutine has returned

	mu     sync.Mutex
	closed bool
	topics map[string][]*memSub // copy on write: the delivery goroutine reads a snapshot

	published, received, droppedIn atomic.Uint64
}

type memMsg struct {
	topic string
	op    session.Opcode
	p     []byte // shared by every receiving node: never modified
}

type memSub struct{ h Handler }

// Connect adds a node, with its delivery goroutine, to the bus.
func (m *Memory) Connect() *Node {
	n := &Node{m: m, inbox: make(chan memMsg, m.inbox), done: make(chan struct{}), stopped: make(chan struct{}),
		topics: make(map[string][]*memSub)}
	m.mu.Lock()
	m.nodes[n] = struct{}{}
	m.mu.Unlock()
	go n.deliver()
	return n
}

// Publish implements Bus. Copying p once per message, it never blocks: a
// node whose inbox is full drops the message and counts it.
func (n *Node) Publish(topic string, op session.Opcode, p []byte) error {
	if err := CheckTopic(topic); err != nil {
		return err
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	msg := memMsg{topic: topic, op: op, p: append([]byte(nil), p...)}
	n.m.mu.Lock()
	for o := range n.m.nodes {
		if o == n || !o.subscribed(topic) {
			continue
		}
		select {
		case o.inbox <- msg:
		default:
			o.droppedIn.Add(1)
		}
	}
	n.m.mu.Unlock()
	n.published.Add(1)
	return nil
}

func (n *Node) subscribed(topic string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.topics[topic]) > 0
}

// Subscribe implements Bus.
func (n *Node) Subscribe(topic string, h Handler) (func(), error) {
	if err := CheckTopic(topic); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, ErrNilHandler
	}
	s := &memSub{h: h}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	n.topics[topic] = append(append([]*memSub(nil), n.topics[topic]...), s)
	var once sync.Once
	return func() { once.Do(func() { n.unsubscribe(topic, s) }) }, nil
}

func (n *Node) unsubscribe(topic string, s *memSub) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.topics[topic]
	subs := make([]*memSub, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	if len(subs) == 0 {
		delete(n.topics, topic)
		return
	}
	n.topics[topic] = subs
}

// deliver runs the handlers, one message at a time.
func (n *Node) deliver() {
	defer close(n.stopped)
	for {
		select {
		case <-n.done:
			return
		case msg := <-n.inbox:
			n.mu.Lock()
			subs := n.topics[msg.topic]
			n.mu.Unlock()
			for _, s := range subs {
				s.h(msg.op, msg.p)
			}
			if len(subs) > 0 {
				n.received.Add(1)
			}
		}
	}
}

// Close implements Bus: it leaves the Memory and returns when the delivery
// goroutine has stopped (a handler running at that moment finishes first;
// so do not call Close from a handler).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.closed = true
	n.topics = map[string][]*memSub{}
	n.mu.Unlock()
	n.m.mu.Lock()
	delete(n.m.nodes, n)
	n.m.mu.Unlock()
	close(n.done)
	<-n.stopped
	return nil
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	subs, closed := len(n.topics), n.closed
	n.mu.Unlock()
	return Stats{Published: n.published.Load(), Received: n.received.Load(),
		DroppedIn: n.droppedIn.Load(), Subscriptions: subs, Connected: !closed}
}

package loop_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/loop"
)

// echoSizes straddle every payload-length encoding boundary (7-bit, 16-bit,
// 64-bit) and end at the default MaxMessage.
var echoSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20}

func withMaxMessage(n int) func(o *loop.Options) {
	return func(o *loop.Options) { o.Session.MaxMessage = n }
}

// TestIntegrationEcho: an independent client gets back, byte for byte, text
// and binary messages of every length class, then many pipelined messages.
func TestIntegrationEcho(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		// The pipelined part below lets replies queue while the client
		// checks them: more than the default HighWater of a slow consumer.
		ts := startServer(t, engine, echoRecorder(), func(o *loop.Options) {
			o.Session.MaxMessage = 1 << 20
			o.Session.HighWater = 4 << 20
		})
		c := ts.dialWS("/", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
		defer cancel()

		for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
			for i, n := range echoSizes {
				want := payload(n, typ == websocket.MessageText, i)
				if err := c.Write(ctx, typ, want); err != nil {
					t.Fatalf("write %v %d bytes: %v", typ, n, err)
				}
				gt, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("read echo of %v %d bytes: %v", typ, n, err)
				}
				if gt != typ {
					t.Errorf("echo of %v %d bytes came back as %v", typ, n, gt)
				}
				if d := equalOrDescribe(got, want); d != "" {
					t.Errorf("echo of %v %d bytes: %s", typ, n, d)
				}
			}
		}

		// Pipelined: a writer sends 500 messages of varying sizes while the
		// reader checks them in order, so replies queue in the server.
		const count = 500
		errc := make(chan error, 1)
		go func() {
			for i := 0; i < count; i++ {
				typ := websocket.MessageBinary
				if i%2 == 0 {
					typ = websocket.MessageText
				}
				if err := c.Write(ctx, typ, payload((i*97)%5000, typ == websocket.MessageText, i)); err != nil {
					errc <- fmt.Errorf("write %d: %w", i, err)
					return
				}
			}
			errc <- nil
		}()
		for i := 0; i < count; i++ {
			typ, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read pipelined %d: %v", i, err)
			}
			wantTyp := websocket.MessageBinary
			if i%2 == 0 {
				wantTyp = websocket.MessageText
			}
			if typ != wantTyp {
				t.Fatalf("pipelined %d: type %v, want %v", i, typ, wantTyp)
			}
			if d := equalOrDescribe(got, payload((i*97)%5000, typ == websocket.MessageText, i)); d != "" {
				t.Fatalf("pipelined %d: %s", i, d)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}

		// A clean close: the server answers 1000 and reports it.
		if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
			t.Errorf("client close handshake: %v", err)
		}
		ev := ts.rec.firstClose(t)
		if ev.code != 1000 || ev.reason != "done" {
			t.Errorf("server OnClose(%d, %q, %v), want (1000, \"done\")", ev.code, ev.reason, ev.err)
		}
		if got := ts.stats.Messages.Load(); got != uint64(2*len(echoSizes)+count) {
			t.Errorf("Stats.Messages = %d, want %d", got, 2*len(echoSizes)+count)
		}
		ts.finish()
	})
}

// TestIntegrationFragmented: a raw client sends fragmented messages (with
// control frames interleaved and UTF-8 runes split across fragments, and a
// frame dribbled one byte per write); the server reassembles them.
func TestIntegrationFragmented(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), nil)
		rc := ts.openRaw()

		// "Hello" as three fragments with a ping in the middle.
		var b []byte
		b = append(b, clientFrame(false, opText, []byte("He"))...)
		b = append(b, clientFrame(false, opCont, []byte("l"))...)
		b = append(b, clientFrame(true, opPing, []byte("mid"))...)
		b = append(b, clientFrame(true, opCont, []byte("lo"))...)
		rc.write(b)
		f := rc.mustFrame()
		if f.op != opPong || string(f.payload) != "mid" {
			t.Fatalf("got op %d %q, want pong \"mid\" (the ping inside the fragmented message)", f.op, f.payload)
		}
		op, p := rc.readMessage()
		if op != opText || string(p) != "Hello" {
			t.Fatalf("got op %d %q, want text \"Hello\"", op, p)
		}

		// A 4-byte rune split across fragments and across writes.
		rune4 := []byte("𝄞") // F0 9D 84 9E
		rc.write(clientFrame(false, opText, append([]byte("a"), rune4[:1]...)))
		rc.write(clientFrame(false, opCont, rune4[1:3]))
		rc.write(clientFrame(true, opCont, append(rune4[3:], 'b')))
		op, p = rc.readMessage()
		if op != opText || string(p) != "a𝄞b" {
			t.Fatalf("got op %d %q, want text \"a𝄞b\"", op, p)
		}

		// Binary in many fragments, including empty ones.
		want := payload(3000, false, 7)
		b = b[:0]
		b = append(b, clientFrame(false, opBinary, nil)...)
		for i := 0; i < 3000; i += 500 {
			b = append(b, clientFrame(false, opCont, want[i:i+500])...)
		}
		b = append(b, clientFrame(true, opCont, nil)...)
		rc.write(b)
		op, p = rc.readMessage()
		if op != opBinary {
			t.Fatalf("got op %d, want binary", op)
		}
		if d := equalOrDescribe(p, want); d != "" {
			t.Fatalf("fragmented binary echo: %s", d)
		}

		// 1 MiB (the default MaxMessage) in 16 fragments of 64 KiB.
		want = payload(1<<20, true, 3)
		b = b[:0]
		for i := 0; i < 16; i++ {
			op := byte(opCont)
			if i == 0 {
				op = opText
			}
			b = append(b, clientFrame(i == 15, op, want[i<<16:(i+1)<<16])...)
		}
		go rc.c.Write(b)
		op, p = rc.readMessage()
		if d := equalOrDescribe(p, want); op != opText || d != "" {
			t.Fatalf("1 MiB in fragments: op %d, %s", op, d)
		}

		// One frame, one byte per write: the parser must resume at any byte.
		fr := clientFrame(true, opText, []byte("dribbled é"))
		for i := range fr {
			rc.write(fr[i : i+1])
		}
		op, p = rc.readMessage()
		if op != opText || string(p) != "dribbled é" {
			t.Fatalf("got op %d %q, want text \"dribbled é\"", op, p)
		}

		// A 125-byte ping dribbled the same way: a partial control frame
		// waits in the session like a data frame does.
		ping := payload(125, false, 8)
		fr = clientFrame(true, opPing, ping)
		for i := range fr {
			rc.write(fr[i : i+1])
		}
		if f := rc.mustFrame(); f.op != opPong || !bytes.Equal(f.payload, ping) {
			t.Fatalf("dribbled ping: got op %d %d bytes, want the pong with its payload", f.op, len(f.payload))
		}

		fr = clientFrame(true, opClose, closeBody(1000, "dribbled"))
		for i := range fr {
			rc.write(fr[i : i+1])
		}
		rc.expectClose(1000, false)
		if ev := rc.serverClose(ts.rec); ev.code != 1000 || ev.reason != "dribbled" {
			t.Errorf("OnClose(%d, %q, %v), want (1000, \"dribbled\")", ev.code, ev.reason, ev.err)
		}
		ts.finish()
	})
}

// TestIntegrationManyClients: 200 concurrent clients, 20 messages each, every
// echo verified; the server sees 200 opens and 200 closes.
func TestIntegrationManyClients(t *testing.T) {
	const clients, msgs = 200, 20
	forEachEngine(t, func(t *testing.T, engine string) {
		ts := startServer(t, engine, echoRecorder(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, err := ts.tryDialWS(fmt.Sprintf("/c%d", i), nil)
				if err != nil {
					errs <- fmt.Errorf("client %d: dial: %w", i, err)
					return
				}
				for m := 0; m < msgs; m++ {
					want := []byte(fmt.Sprintf("client %d message %d %s", i, m, payload(m*37, true, i)))
					if err := c.Write(ctx, websocket.MessageText, want); err != nil {
						errs <- fmt.Errorf("client %d: write %d: %w", i, m, err)
						return
					}
					typ, got, err := c.Read(ctx)
					if err != nil {
						errs <- fmt.Errorf("client %d: read %d: %w", i, m, err)
						return
					}
					if typ != websocket.MessageText || string(got) != string(want) {
						errs <- fmt.Errorf("client %d: echo %d: type %v, %s", i, m, typ, equalOrDescribe(got, want))
						return
					}
				}
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
					errs <- fmt.Errorf("client %d: close: %w", i, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		n := 0
		for err := range errs {
			if n < 10 {
				t.Error(err)
			}
			n++
		}
		if n > 0 {
			t.Fatalf("%d of %d clients failed", n, clients)
		}
		waitFor(t, "200 OnClose calls", func() bool { return ts.rec.closedCount() == clients })
		if got := ts.rec.opened(); got != clients {
			t.Errorf("OnOpen called %d times, want %d", got, clients)
		}
		if got := ts.stats.Messages.Load(); got != clients*msgs {
			t.Errorf("Stats.Messages = %d, want %d", got, clients*msgs)
		}
		ts.finish()
	})
}

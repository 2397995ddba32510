package bridge

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsloop/wsloop/session"
)

func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"q\"b\\s/", "q\"b\\s/"},
		{"\n\r\t\x00\x1f\x7f", "\n\r\t\x00\x1f\x7f"},
		{"h\u00e9llo \u2713 \U0001F600", "h\u00e9llo \u2713 \U0001F600"},
		{"bad \xff\xfe end", "bad \uFFFD\uFFFD end"},
		{"cut \xe2\x9c", "cut \uFFFD\uFFFD"},
		{"\u2028\u2029", "\u2028\u2029"},
	} {
		enc := appendJSONString(nil, []byte(c.in))
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Errorf("%q encodes as %s, which is not JSON: %v", c.in, enc, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q encodes as %s, decoding to %q, want %q", c.in, enc, got, c.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	var p commandParser
	var cmd command
	ok := []struct {
		line            string
		name, id, room  string
		op              session.Opcode
		payload, reason string
		code            int64
	}{
		{`{"cmd":"send","id":"3.1","text":"hi"}`, "send", "3.1", "", session.Text, "hi", "", 0},
		{` { "text" : "a\"b\\c\/d\n\u00e9\ud83d\ude00" , "cmd" : "send" , "id" : "0.7" } `, "send", "0.7", "", session.Text, "a\"b\\c/d\n\u00e9\U0001F600", "", 0},
		{`{"cmd":"send","id":"0.7","text":"lone \udc00 surrogate"}`, "send", "0.7", "", session.Text, "lone \uFFFD surrogate", "", 0},
		{`{"cmd":"send","id":"0.7","binary":"AAEC/w=="}`, "send", "0.7", "", session.Binary, "\x00\x01\x02\xff", "", 0},
		{`{"cmd":"close","id":"1.2","code":4001,"reason":"bye"}`, "close", "1.2", "", 0, "", "bye", 4001},
		{`{"cmd":"join","id":"1.2","room":"r","extra":{"nested":[1,2,{"x":"}"}]},"n":-1.5e3,"t":true,"z":null}`, "join", "1.2", "r", 0, "", "", 0},
	}
	for _, c := range ok {
		if err := p.parse([]byte(c.line), &cmd); err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		if string(cmd.name) != c.name || string(cmd.id) != c.id || string(cmd.room) != c.room || cmd.op != c.op ||
			string(cmd.payload) != c.payload || string(cmd.reason) != c.reason || cmd.code != c.code {
			t.Errorf("%s: parsed %q %q %q op %v %q %q %d", c.line, cmd.name, cmd.id, cmd.room, cmd.op, cmd.payload, cmd.reason, cmd.code)
		}
	}
	for _, line := range []string{``, `[]`, `{`, `{"cmd":"send"`, `{"cmd":"send",}`, `{"cmd":send}`, `{"cmd":"send"} x`,
		`{"cmd":"a","text":"unterminated}`, `{"cmd":"a","text":"bad \x escape"}`, `{"cmd":"a","text":"\u12"}`,
		"{\"cmd\":\"a\",\"text\":\"raw \n newline\"}", `{"cmd":"a","binary":"!!!"}`, `{"text":"no cmd"}`,
		`{"cmd":"a","code":1.5}`, `{"cmd":"a","x":[1,2}`, `{"cmd":"a","x":}`} {
		if err := p.parse([]byte(line), &cmd); err == nil {
			t.Errorf("%q parsed as %+v, want an error", line, cmd)
		}
	}
}

// FuzzParseCommand: no input panics, and a "text" that encoding/json reads
// as a string is read the same (invalid UTF-8 replaced).
func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"cmd":"send","id":"1.2","text":"a\u00e9\n"}`))
	f.Add([]byte(`{"cmd":"join","room":"x","extra":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{"cmd":"send","binary":"AAE="}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var p commandParser
		var cmd command
		if p.parse(line, &cmd) != nil || cmd.op != session.Text {
			return
		}
		var ref map[string]any
		if json.Unmarshal(line, &ref) != nil {
			t.Fatalf("%q parsed, but it is not JSON", line)
		}
		if want, ok := ref["text"].(string); ok && string(cmd.payload) != want {
			t.Errorf("%q: text %q, encoding/json says %q", line, cmd.payload, want)
		}
	})
}

// TestHotPathAllocs: encoding a message event, parsing a send command and
// finding its connection allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	e := &entry{id: 1<<32 | 7, gen: 3, slot: 12, inUse: true}
	text := []byte(`hello "world" \ with a newline` + "\n")
	bin := []byte{0, 1, 2, 3, 255}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(1000, func() {
		buf = appendMessageEvent(buf[:0], e, session.Text, text)
		buf = appendMessageEvent(buf, e, session.Binary, bin)
	}); n != 0 {
		t.Errorf("encoding message events: %v allocations", n)
	}
	var want strings.Builder
	want.WriteString(`{"event":"message","id":"12.3","text":"hello \"world\" \\ with a newline\n"}` + "\n")
	want.WriteString(`{"event":"message","id":"12.3","binary":"AAECA/8="}` + "\n")
	if string(buf) != want.String() {
		t.Errorf("events:\n%s\nwant:\n%s", buf, want.String())
	}

	var p commandParser
	var cmd command
	line := []byte(`{"cmd":"send","id":"12.3","text":"echo \"this\" \u00e9"}`)
	_ = p.parse(line, &cmd) // warm the scratch buffer
	r := newRegistry()
	for i := 0; i < 13; i++ {
		r.alloc()
	}
	r.at(12).gen = 3
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.parse(line, &cmd); err != nil {
			t.Fatal(err)
		}
		if r.lookup(cmd.id) == nil {
			t.Fatal("lookup failed")
		}
	}); n != 0 {
		t.Errorf("parsing a send command and finding its connection: %v allocations", n)
	}
}

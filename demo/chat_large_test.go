package demo

import (
	"fmt"
	"testing"
)

// A room past MaxAnnouncedRoom members stops announcing joins. Joins on
// different loops may reach a member in any order, but a member's own join
// announcement would be published before its first message (both come from
// its loop, in order), so "m101: hello" proves m101 was not announced.
func TestChatLargeRoomSkipsAnnouncements(t *testing.T) {
	_, _, addr := serve(t, "epoll", Options{}, nil)
	first := dial(t, addr, "/ws/chat?room=big&nick=m1", nil)
	for i := 2; i <= MaxAnnouncedRoom; i++ {
		dial(t, addr, fmt.Sprintf("/ws/chat?room=big&nick=m%d", i), nil)
	}
	lastNick := fmt.Sprintf("m%d", MaxAnnouncedRoom+1)
	last := dial(t, addr, "/ws/chat?room=big&nick="+lastNick, nil)
	if err := last.Write(ctx(t), 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	joins := map[string]bool{}
	hello := false
	for !hello || len(joins) < MaxAnnouncedRoom {
		_, got := read(t, first)
		var n int
		switch {
		case got == lastNick+": hello":
			hello = true
		case !hello && got == "* "+lastNick+" joined":
			t.Fatalf("the join of member %d was announced", MaxAnnouncedRoom+1)
		case fmtScan(got, &n) && n >= 1 && n <= MaxAnnouncedRoom && !joins[got]:
			joins[got] = true
		default:
			t.Fatalf("unexpected message %q", got)
		}
	}
}

func fmtScan(s string, n *int) bool {
	_, err := fmt.Sscanf(s, "* m%d joined", n)
	return err == nil && s == fmt.Sprintf("* m%d joined", *n)
}

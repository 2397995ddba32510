// Command wsload generates WebSocket load on event loops and verifies what
// comes back. See package loadtest for the scenarios.
//
//	wsload -scenario idle -url ws://127.0.0.1:8080/ws/echo -conns 19000 -duration 30s
//	wsload echo -url ws://127.0.0.1:8080/ws/echo -conns 100 -size 1024 -duration 10s
//	wsload broadcast -url ws://a:8080/ws/chat?room=r,ws://b:8080/ws/chat?room=r   # across two servers
//	wsload soak -conns 10000 -duration 30m -server-pid "$(pgrep -n wsloop)"
//
// The exit status is 0 when the run passed, 1 when the server did something
// wrong (the report says what), 2 when the run could not be carried out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/wsloop/wsloop/loadtest"
)

func main() {
	if loadtest.IsWorker() {
		os.Exit(loadtest.WorkerMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command with its arguments and output streams; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg loadtest.Config
	if len(args) > 0 && slices.Contains(loadtest.Scenarios, args[0]) {
		cfg.Scenario, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("wsload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: wsload [%s] -url ws[s]://host:port/path [flags]\n", strings.Join(loadtest.Scenarios, "|"))
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", cfg.Scenario, "scenario: "+strings.Join(loadtest.Scenarios, ", ")+" (or give it as the first argument)")
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws/echo", "server endpoint (wsloop's demo echo by default; sse: http://...); several, comma-separated, spread the connections over them")
	fs.StringVar(&cfg.Origin, "origin", "", "Origin header to send")
	fs.StringVar(&cfg.CAFile, "ca", "", "wss: PEM file of the CA certificates that verify the server (default: the system's roots)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "wss: do not verify the server's certificate (tests with a throwaway certificate only)")
	fs.IntVar(&cfg.Conns, "conns", 0, "connections (broadcast: subscribers); default 1000, echo 100")
	fs.Float64Var(&cfg.Rate, "rate", 0, "per second: connect/churn connections, echo messages (0: closed loop), broadcast published messages (default 10; churn default 100)")
	fs.Float64Var(&cfg.Ramp, "ramp", 0, "connects per second while setting up idle/echo/broadcast (0: as fast as -inflight allows)")
	fs.IntVar(&cfg.InFlight, "inflight", 0, "connects in progress at once per process (default 256)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long the traffic runs (default 10s)")
	fs.IntVar(&cfg.Messages, "messages", 0, "echo: messages in total (0: until -duration); broadcast: messages to publish (default 50)")
	fs.IntVar(&cfg.Size, "size", 0, "echo message size in bytes (default 64; at least 56 text, 32 binary)")
	fs.BoolVar(&cfg.Binary, "binary", false, "echo binary messages instead of text")
	fs.BoolVar(&cfg.Compress, "compress", false, "offer permessage-deflate (no context takeover) on every connection; the report says how many the server accepted")
	fs.DurationVar(&cfg.Drain, "drain", 0, "wait this long after the traffic for messages on their way (default 5s)")
	fs.DurationVar(&cfg.Ping, "ping", 0, "ping the server after this long without input (0: never)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "bound on connect plus handshake (default 10s)")
	fs.StringVar(&cfg.Publish, "publish", "", "broadcast source: self (one extra connection publishes) or server (server messages carry a time field)")
	fs.StringVar(&cfg.PublishURL, "publish-url", "", "broadcast, sse: where the publishers connect, ws:// (comma-separated: publisher k uses URL k mod n; default -url)")
	fs.IntVar(&cfg.Publishers, "publishers", 0, "broadcast, sse with -publish self: publishing connections, each sending -messages (default one per -publish-url); with several, or several URLs, every subscriber must get every publisher's messages exactly once, in order")
	fs.DurationVar(&cfg.WarmUp, "warm-up", 0, "with several publishers or URLs: how long the publishers' probes may take to reach every subscriber before the traffic (default 30s, or five rounds of probes when the room is large)")
	fs.StringVar(&cfg.PublishTemplate, "publish-template", "", `broadcast: published text, %s is the token (default "%s"; e.g. {"text":"%s"})`)
	fs.StringVar(&cfg.StampField, "stamp-field", "", `-publish server: JSON field with the send time: a number since the Unix epoch or an RFC 3339 string (default "t")`)
	fs.StringVar(&cfg.SeqField, "seq-field", "", `-publish server: optional JSON sequence field, +1 per message (default "seq")`)
	stampUnit := fs.String("stamp-unit", "auto", "-publish server: unit of the time field: auto, s, ms, us, ns (since the Unix epoch)")
	src := fs.String("src", "", "source addresses, e.g. 127.0.0.2-127.0.0.40 (default on loopback: 127.0.0.2 onwards, 2,500 connections each)")
	fs.IntVar(&cfg.Procs, "procs", 0, "worker processes (0: from -conns and the open-file limit; 1: this process)")
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops per process (default GOMAXPROCS)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to sample VmRSS of, with its children (a wsloop -procs supervisor: its workers), for bytes per connection (soak: and descriptors)")
	fs.StringVar(&cfg.Soak.RoomURL, "room-url", "", "soak: chat room for subscribers, slow readers and the publisher (default -url's host, /ws/chat?room=wsload-soak-RUN)")
	fs.Float64Var(&cfg.Soak.ChurnRate, "churn-rate", 0, "soak: connections opened and closed per second (default 20)")
	fs.Float64Var(&cfg.Soak.BroadcastRate, "broadcast-rate", 0, "soak: room messages (-size bytes) per second (default 2)")
	fs.IntVar(&cfg.Soak.Subscribers, "subscribers", 0, "soak: room subscribers among -conns (default 10%)")
	fs.IntVar(&cfg.Soak.SlowReaders, "slow-readers", 0, "soak: room members among -conns that never read (default 1%)")
	fs.StringVar(&cfg.Soak.VarsURL, "server-vars", "", "soak: the server's expvar page for goroutines and heap (default http://<-url host>/debug/vars, used when it answers; for wsloop give http://<-admin-addr>/debug/vars)")
	fs.StringVar(&cfg.Soak.GCURL, "server-gc", "", "soak: URL that makes the server collect garbage before the heap is read, e.g. http://127.0.0.1:6060/debug/pprof/heap?gc=1")
	fs.DurationVar(&cfg.Soak.Settle, "settle", 0, "soak: how long after the teardown the server may take to come back near its baseline (default 30s with -server-gc, else 150s)")
	fs.IntVar(&cfg.Soak.Tolerance.FDs, "tol-fds", 0, "soak: descriptors the server may keep above its baseline (default 8)")
	fs.IntVar(&cfg.Soak.Tolerance.Goroutines, "tol-goroutines", 0, "soak: goroutines the server may keep above its baseline (default 8)")
	fs.Int64Var(&cfg.Soak.Tolerance.HeapBytes, "tol-heap", 0, "soak: heap bytes above the baseline allowed, at least (default 8 MiB, or 25% of the baseline)")
	fs.Int64Var(&cfg.Soak.Tolerance.RSSBytes, "tol-rss", 0, "soak: RSS bytes above the baseline allowed, at least (default 64 MiB, or half the growth to the peak)")
	jsonFile := fs.String("json", "", "write the report as JSON to this file")
	verbose := fs.Bool("v", false, "log diagnostics")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsload: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Scenario = *scenario
	cfg.StampUnit = loadtest.StampUnit(*stampUnit)
	if *src != "" {
		var err error
		if cfg.Src, err = loadtest.ParseSrc(*src); err != nil {
			fmt.Fprintln(stderr, "wsload:", err)
			return 2
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if f, ok := stderr.(*os.File); ok && loadtest.IsTerminal(f) {
		cfg.Progress = stderr
	}

	rep, err := loadtest.Run(ctx, cfg)
	if rep != nil {
		rep.WriteText(stdout)
		if *jsonFile != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); werr != nil {
				fmt.Fprintln(stderr, "wsload:", werr)
				return 2
			}
		}
	}
	var verr *loadtest.VerificationError
	switch {
	case errors.As(err, &verr):
		fmt.Fprintln(stderr, "wsload: FAILED:", strings.Join(verr.Failures, "; "))
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "wsload:", err)
		return 2
	}
	return 0
}

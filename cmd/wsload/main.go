// Command wsload generates WebSocket load on event loops and verifies what
// comes back. See package loadtest for the scenarios.
//
//	wsload -scenario idle -url ws://127.0.0.1:8080/ws/echo -conns 19000 -duration 30s
//	wsload echo -url ws://127.0.0.1:8080/ws/echo -conns 100 -size 1024 -duration 10s
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
		fmt.Fprintf(fs.Output(), "usage: wsload [%s] -url ws://host:port/path [flags]\n", strings.Join(loadtest.Scenarios, "|"))
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", cfg.Scenario, "scenario: "+strings.Join(loadtest.Scenarios, ", ")+" (or give it as the first argument)")
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/ws/echo", "server endpoint (wsloop's demo echo by default)")
	fs.StringVar(&cfg.Origin, "origin", "", "Origin header to send")
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
	fs.StringVar(&cfg.PublishURL, "publish-url", "", "broadcast: where the publisher connects (default -url)")
	fs.StringVar(&cfg.PublishTemplate, "publish-template", "", `broadcast: published text, %s is the token (default "%s"; e.g. {"text":"%s"})`)
	fs.StringVar(&cfg.StampField, "stamp-field", "", `-publish server: JSON field with the send time: a number since the Unix epoch or an RFC 3339 string (default "t")`)
	fs.StringVar(&cfg.SeqField, "seq-field", "", `-publish server: optional JSON sequence field, +1 per message (default "seq")`)
	stampUnit := fs.String("stamp-unit", "auto", "-publish server: unit of the time field: auto, s, ms, us, ns (since the Unix epoch)")
	src := fs.String("src", "", "source addresses, e.g. 127.0.0.2-127.0.0.40 (default on loopback: 127.0.0.2 onwards, 2,500 connections each)")
	fs.IntVar(&cfg.Procs, "procs", 0, "worker processes (0: from -conns and the open-file limit; 1: this process)")
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops per process (default GOMAXPROCS)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to sample VmRSS of, for bytes per connection")
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

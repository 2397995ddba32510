// Command wsbench runs wsloop's benchmark matrix and writes BENCHMARKS.md
// with its charts. See package bench.
//
//	wsbench                 # full run: BENCHMARKS.md and bench/charts/, about 20 minutes on 2 cores
//	wsbench -quick          # smoke test of the harness (CI): about 2 minutes, writes to a temporary directory
//
// It exits non-zero when the harness broke: a binary did not build, a
// server did not start or died, wsload failed or found a server at fault,
// or a table row came out empty.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wsloop/wsloop/bench"
)

func main() {
	quick := flag.Bool("quick", false, "small counts and one repetition (a harness check for CI); writes to a temporary directory unless -out is given")
	out := flag.String("out", "", "Markdown page to write (default BENCHMARKS.md at the repository root; with -quick a temporary file)")
	reps := flag.Int("reps", 0, "repetitions of every measurement (default 3; with -quick 1)")
	servers := flag.String("servers", "epoll,gnet,goroutine,epoll-deflate,gorilla,gobwas,epoll-tls,goroutine-tls,gorilla-tls", "servers to compare, comma-separated subset (-tls: the same over wss)")
	previous := flag.String("previous", "", "also measure the epoll engine of wsloop as it was at this git revision (e.g. a commit or tag), beside the current one")
	scenarios := flag.String("scenarios", strings.Join(bench.AllScenarios, ","), "scenarios to run, comma-separated subset")
	sizes := flag.String("sizes", "", "idle connection counts, ascending (default 5000,10000,19000; with -quick 250,500)")
	charts := flag.String("charts", "", "directory for the SVG charts and results.json (default bench/charts beside the default page, else PAGE-charts beside -out)")
	gogc := flag.String("gogc", "50", "GOGC of every server process, so that all collect garbage alike (wsloop's own default is 50, Go's 100); empty: each server's own default")
	keep := flag.Bool("keep", false, "keep the built binaries and server logs (the directory is logged)")
	verbose := flag.Bool("v", false, "debug logs: every server and wsload command line")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: wsbench [-quick] [flags]   (run inside the wsloop repository)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q; see -h", flag.Args()))
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := bench.FullConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	var err error
	if cfg.Servers, err = bench.LookupServers(*servers); err == nil && *previous != "" {
		cfg.Servers = append(cfg.Servers, bench.PreviousEpoll(*previous))
	}
	if err != nil {
		fail(err)
	}
	if cfg.Scenarios, err = bench.ParseScenarios(*scenarios); err != nil {
		fail(err)
	}
	if *sizes != "" {
		if cfg.Sizes, err = bench.ParseSizes(*sizes); err != nil {
			fail(err)
		}
	}
	if *reps != 0 {
		cfg.Reps = *reps
	}
	if cfg.Reps < 1 {
		fail(fmt.Errorf("-reps %d: want at least 1", cfg.Reps))
	}
	wd, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	if cfg.Root, err = bench.FindRoot(wd); err != nil {
		fail(err)
	}
	if cfg.Out, cfg.ChartsDir, err = bench.DefaultPaths(cfg.Root, *out, *charts, *quick); err != nil {
		fail(err)
	}
	cfg.Keep = *keep
	cfg.GOGC = *gogc
	cfg.Logger = log
	cfg.Command = commandLine()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("wsbench", "servers", *servers, "scenarios", strings.Join(cfg.Scenarios, ","), "reps", cfg.Reps, "out", cfg.Out)
	if _, err := bench.Run(ctx, cfg); err != nil {
		log.Error("benchmark failed", "err", err, "page", cfg.Out)
		os.Exit(1)
	}
	fmt.Println(cfg.Out)
}

// commandLine is how the page says the run was started.
func commandLine() string {
	parts := []string{"wsbench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsbench:", err)
	os.Exit(2)
}

// Command switchyard runs Switchyard: every edge and worker pool in one
// process (`switchyard run`), or one of them alone so a deployment can
// scale each part separately. See `switchyard --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/part"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ps := parts()
	fs := flag.NewFlagSet("switchyard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of config.yaml (default $CONFIG_FILE, or ./config.yaml when it exists)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	scaleUp := fs.Bool("scale-up", false, "raise the replicas of existing streams and buckets to NATS_REPLICAS (same as NATS_SCALE_UP=true)")
	fs.Usage = func() { usage(stdout, ps) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "switchyard", version)
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr, ps)
		return 2
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "config" {
		// switchyard config check [-config x.yaml]
		if len(rest) == 0 || rest[0] != "check" {
			fmt.Fprintln(stderr, "switchyard: usage: switchyard config check [-config config.yaml]")
			return 2
		}
		cmd, rest = "config check", rest[1:]
	}
	var selected []part.Part
	switch cmd {
	case "help", "-h", "--help":
		usage(stdout, ps)
		return 0
	case "version":
		fmt.Fprintln(stdout, "switchyard", version)
		return 0
	case "run":
		selected = ps
	case "config check":
	default:
		for _, p := range ps {
			if p.Name == cmd {
				selected = []part.Part{p}
			}
		}
		if selected == nil {
			fmt.Fprintf(stderr, "switchyard: unknown command %q (see switchyard --help)\n", cmd)
			return 2
		}
	}
	// Flags may also follow the subcommand (switchyard run -config x.yaml);
	// there, -h shows the command's own help.
	fs.Usage = func() { commandUsage(stdout, fs, cmd, selected) }
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "switchyard", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	environ := env.ToMap(os.Environ())
	path := *cfgPath
	if path == "" {
		path = environ["CONFIG_FILE"]
	}
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		}
	}
	cfg, err := config.Load(path, environ)
	if err != nil {
		fmt.Fprintln(stderr, "switchyard:", err)
		return 2
	}
	if *scaleUp {
		cfg.NATS.ScaleUp = true
	}
	if cmd == "config check" {
		return configCheck(stdout, stderr, path, cfg)
	}
	if _, set := environ["GOGC"]; !set {
		// Requests allocate a little each and the heap stays small, so the
		// default GOGC=100 collects very often: 400 measured ~10% less CPU
		// per routed request (BENCHMARKS.md). GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level(cfg.Log.Level)}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, app.Options{Config: cfg, Parts: selected, Log: log, Version: version}); err != nil {
		fmt.Fprintln(stderr, "switchyard:", err)
		return 1
	}
	return 0
}

func level(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l
}

// commandUsage is the help of one command: what it starts and its flags.
func commandUsage(w io.Writer, fs *flag.FlagSet, cmd string, selected []part.Part) {
	switch cmd {
	case "run":
		fmt.Fprintln(w, "Usage: switchyard run [-config config.yaml] [-scale-up]")
		fmt.Fprintln(w, "\nStarts every edge and worker pool in one process:")
		for _, p := range selected {
			fmt.Fprintf(w, "  %-10s %s\n", p.Name, p.Summary)
		}
	case "config check":
		fmt.Fprintln(w, "Usage: switchyard config check [-config config.yaml]")
		fmt.Fprintln(w, "\nValidates the configuration (defaults < config.yaml < environment) and prints")
		fmt.Fprintln(w, "the effective one as YAML, secrets masked. Exit 0 when valid, 2 with the key at fault.")
	default:
		fmt.Fprintf(w, "Usage: switchyard %s [-config config.yaml]\n\n", cmd)
		for _, p := range selected {
			fmt.Fprintf(w, "Starts the %s alone.\n", p.Summary)
		}
	}
	if cmd != "config check" {
		cfg := config.Default()
		var ports []string
		for _, p := range selected {
			if p.Port != nil {
				key, port := p.Port(cfg)
				ports = append(ports, fmt.Sprintf("%s %s (%d)", p.Name, key, port))
			}
		}
		if len(ports) == 0 {
			ports = append(ports, fmt.Sprintf("WORKER_PORT (%d) for /health and /metrics", cfg.Server.WorkerPort))
		}
		fmt.Fprintf(w, "\nListens on: %s.\n", strings.Join(ports, ", "))
		fmt.Fprintln(w, "Every edge serves GET /health. The process serves GET /metrics once: on")
		fmt.Fprintln(w, "METRICS_PORT when set, else on its first edge's port (else WORKER_PORT).")
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func usage(w io.Writer, ps []part.Part) {
	fmt.Fprint(w, `switchyard: the NATS services layer between Node.js and Rust services.

Usage:
  switchyard [-config config.yaml] <command>

Commands:
  run        every edge and worker pool in one process
`)
	for _, p := range ps {
		fmt.Fprintf(w, "  %-10s %s\n", p.Name, p.Summary)
	}
	fmt.Fprint(w, `  config check  validate the configuration and print the effective one
  version    print the version (also --version)
  help       this text (switchyard <command> --help: that command's help)

Edges listen on BROKER_PORT 8081, LB_PORT 8082, CACHE_PORT 8083 and STREAM_PORT
8084, each with GET /health; a process serves GET /metrics once (METRICS_PORT, else
its first edge's port, else WORKER_PORT 8085 for worker pools alone).
With no NATS_URL every command starts an embedded nats-server with JetStream
(store in DATA_DIR, client port NATS_PORT); with NATS_URL it connects there.
Configuration: defaults < config.yaml < environment (see README.md).
`)
}

package jetstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrPortInUse is returned by StartEmbedded when the client port is taken.
var ErrPortInUse = errors.New("port already in use")

// ErrExposedWithoutAuth is returned by StartEmbedded when the client port
// would listen on an interface other than loopback with no authentication.
var ErrExposedWithoutAuth = errors.New("listens beyond loopback without credentials")

// EmbeddedOptions configures an in-process nats-server.
type EmbeddedOptions struct {
	// Host to listen on; empty means 127.0.0.1 (unlike nats-server, whose
	// default is every interface). A host that is not loopback needs User
	// and Password or Token, or a ConfigFile with its own authorization.
	Host string
	// User and Password, or Token, are required from every client,
	// in-process ones included, unless ConfigFile sets its own
	// authorization (which then wins).
	User, Password, Token string
	// Port is the client port; 0 picks a free port, -1 opens none (in-process only).
	Port int
	// StoreDir holds JetStream's files; the server writes under StoreDir/jetstream.
	StoreDir string
	// ConfigFile, when set, is a nats-server config file loaded first; Port
	// and StoreDir above still apply when the file leaves them unset.
	ConfigFile string
	// MaxPayload raises the server's max_payload to at least this many bytes.
	MaxPayload int32
	// ServerName names the server in `nats server ls` and JetStream
	// metadata; a cluster node needs one unique in its cluster.
	ServerName string
	// Cluster, when its Port is set, makes the server a cluster node
	// (see ClusterOptions).
	Cluster ClusterOptions
}

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv  *server.Server
	log  *slog.Logger
	auth string
}

// StartEmbedded starts nats-server in this process with JetStream and waits
// until it accepts connections. It returns ErrPortInUse (wrapped, naming the
// port) when the client port is taken.
func StartEmbedded(o EmbeddedOptions, log *slog.Logger) (*Embedded, error) {
	opts := &server.Options{}
	if o.ConfigFile != "" {
		var err error
		opts, err = server.ProcessConfigFile(o.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("nats config %s: %w", o.ConfigFile, err)
		}
	}
	if opts.Host == "" {
		opts.Host = o.Host
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	auth := "config_file"
	if !hasAuth(opts) {
		switch {
		case o.Token != "":
			opts.Authorization, auth = o.Token, "token"
		case o.User != "":
			opts.Username, opts.Password, auth = o.User, o.Password, "user"
		default:
			auth = "none"
		}
	}
	if opts.Port == 0 {
		// Our -1 means no client port; in a config file, nats-server's -1
		// means a random port, so only the option is interpreted here.
		opts.Port = o.Port
		switch opts.Port {
		case -1:
			opts.DontListen = true
		case 0:
			opts.Port = server.RANDOM_PORT
		}
	}
	if !opts.DontListen && !isLoopback(opts.Host) && !hasAuth(opts) {
		return nil, fmt.Errorf("nats host %s: %w", opts.Host, ErrExposedWithoutAuth)
	}
	if opts.StoreDir == "" {
		opts.StoreDir = o.StoreDir
	}
	if opts.ServerName == "" {
		opts.ServerName = o.ServerName
	}
	if err := applyCluster(opts, o.Cluster, o.User, o.Password, o.Token); err != nil {
		return nil, err
	}
	opts.JetStream = true
	opts.NoSigs = true
	if opts.MaxPayload < o.MaxPayload {
		opts.MaxPayload = o.MaxPayload
	}
	if opts.MaxPending < int64(opts.MaxPayload)*4 {
		opts.MaxPending = int64(opts.MaxPayload) * 4
	}
	if !opts.DontListen && opts.Port > 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("nats client port %d: %w", opts.Port, ErrPortInUse)
			}
			return nil, fmt.Errorf("nats client port %d: %w", opts.Port, err)
		}
		_ = l.Close()
	}
	if err := writableDir(opts.StoreDir); err != nil {
		return nil, fmt.Errorf("JetStream store %s: %w", opts.StoreDir, err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	sl := &serverLogger{log: slog.New(slog.DiscardHandler)}
	if log != nil {
		sl.log = log.With("component", "nats-server")
	}
	srv.SetLoggerV2(sl, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if cause := sl.firstError(); cause != "" {
			return nil, fmt.Errorf("nats server on port %d did not start: %s", opts.Port, cause)
		}
		return nil, fmt.Errorf("nats server on port %d did not become ready", opts.Port)
	}
	return &Embedded{srv: srv, log: log, auth: auth}, nil
}

// hasAuth reports whether opts require clients to authenticate.
func hasAuth(o *server.Options) bool {
	// Users declared inside accounts {} are collected into Users by the parser.
	return o.Username != "" || o.Authorization != "" || len(o.Users) > 0 || len(o.Nkeys) > 0 ||
		len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0 || o.CustomClientAuthentication != nil ||
		o.AuthCallout != nil
}

// isLoopback reports whether host is a loopback address or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// AuthMode names how clients authenticate to the server: "none", "user",
// "token", or "config_file" (the file's own authorization).
func (e *Embedded) AuthMode() string { return e.auth }

// Server returns the underlying server, e.g. for nats.InProcessServer.
func (e *Embedded) Server() *server.Server { return e.srv }

// ClientURL is the nats:// URL clients outside the process use.
func (e *Embedded) ClientURL() string {
	if a, ok := e.srv.Addr().(*net.TCPAddr); ok {
		host := a.IP.String()
		if a.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		return "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
	}
	return e.srv.ClientURL()
}

// StoreDir is where JetStream keeps its files.
func (e *Embedded) StoreDir() string { return filepath.Join(e.srv.StoreDir()) }

// Shutdown stops the server and waits until it has stopped. Safe to call twice.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// writableDir creates dir if needed and checks that files can be written
// there, so a bad DATA_DIR fails at once with its cause.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// serverLogger logs the embedded server through slog. Its notices (the
// banner, one line per setting) are debug lines: a default start logs only
// the server's warnings and errors. The first error is kept so a failed
// start can name its cause.
type serverLogger struct {
	log   *slog.Logger
	mu    sync.Mutex
	first string
}

func (l *serverLogger) keep(msg string) {
	l.mu.Lock()
	if l.first == "" {
		l.first = msg
	}
	l.mu.Unlock()
}

func (l *serverLogger) firstError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.keep(msg)
	l.log.Error(msg)
}
func (l *serverLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.keep(msg)
	l.log.Error(msg)
}
func (l *serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// Package config loads Switchyard's configuration: defaults, then a YAML
// file (config.yaml), then environment variables, then Validate. It is the
// only package that reads the environment; everything else receives a
// *Config. A Config is read-only once loaded and safe to share.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every error Load and Validate return.
var ErrInvalid = errors.New("config")

// Config is the whole configuration: one section per concern, each in a
// file of its own (nats.go, lb.go, cache.go, ...) with its defaults and its
// validation. The zero value is not usable: start from Default.
type Config struct {
	Service Identity `yaml:"service"`
	NATS    NATS     `yaml:"nats"`
	Redis   Redis    `yaml:"redis"`
	Rust    Rust     `yaml:"rust"`
	Metrics Metrics  `yaml:"metrics"`
	Server  Server   `yaml:"server"`
	LB      LB       `yaml:"lb"`
	Cache   Cache    `yaml:"cache"`
	Broker  Broker   `yaml:"broker"`
	Stream  Stream   `yaml:"stream"`
	Log     Log      `yaml:"log"`
	DataDir string   `yaml:"data_dir" env:"DATA_DIR"`
	// Services declares further services routed by the load balancer, and
	// overrides the upstreams of vision, ai and analytics. A service listed
	// here with no upstreams is served by NATS workers only.
	Services map[string]Service `yaml:"services"`
}

// section is one concern's part of the configuration.
type section interface {
	defaults()
	validate() error
}

// sections lists every section, in the order Validate checks them. A new
// concern adds its field to Config and one line here.
func (c *Config) sections() []section {
	return []section{&c.Service, &c.NATS, &c.Redis, &c.Rust, &c.Metrics, &c.Server, &c.LB, &c.Cache, &c.Broker, &c.Stream, &c.Log}
}

// Default returns the configuration used when nothing is set.
func Default() *Config {
	c := &Config{DataDir: "./data"}
	for _, s := range c.sections() {
		s.defaults()
	}
	return c
}

// Load builds the configuration: Default, then the YAML file at path (if
// path is not empty), then the environment environ (normally
// env.ToMap(os.Environ()); nil means the process environment; a variable
// set to "" counts as unset), then Validate. Every error names the key and
// the value at fault and wraps ErrInvalid.
func Load(path string, environ map[string]string) (*Config, error) {
	cfg := Default()
	var raw []byte
	if path != "" {
		var err error
		raw, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %w", ErrInvalid, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, path, yamlError(raw, err))
		}
	}
	if environ == nil {
		// caarlos0/env reads the process environment for a nil map; read it
		// here instead, so errors can quote the values.
		environ = env.ToMap(os.Environ())
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ}); err != nil {
		return nil, envError(cfg, environ, err)
	}
	cfg.resolveLogLevel(raw, environ)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// envError turns caarlos0/env's field-named errors into key=value lines.
// env names a field by its Go name alone, and sections may share field
// names, so every environment key of that name that is set is named.
func envError(cfg *Config, environ map[string]string, err error) error {
	keys := envKeys(reflect.TypeOf(cfg).Elem())
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("%w: environment: %w", ErrInvalid, err)
	}
	var lines []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			var named bool
			for _, key := range keys[pe.Name] {
				if _, set := environ[key]; set {
					lines = append(lines, fmt.Sprintf("%s=%q: %v", key, environ[key], unwrapNum(pe.Err)))
					named = true
				}
			}
			if named {
				continue
			}
		}
		lines = append(lines, e.Error())
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(lines, "; "))
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("not a valid %s", map[string]string{
			"ParseInt": "integer", "ParseBool": "boolean (true or false)", "ParseFloat": "number",
		}[ne.Func])
	}
	return err
}

// envKeys maps each Go field name to the environment keys of the fields
// of that name, found by walking the whole key path of every section.
func envKeys(t reflect.Type) map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if k := f.Tag.Get("env"); k != "" {
				out[f.Name] = append(out[f.Name], prefix+strings.Split(k, ",")[0])
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(t, "")
	return out
}

// invalid builds the error of one bad value: its key (with the environment
// name first, then the YAML path), the value, and why it is refused.
func invalid(key string, val any, why string) error {
	return fmt.Errorf("%w: %s=%v: %s", ErrInvalid, key, val, why)
}

// durationKey is a duration and its key, for positive.
type durationKey struct {
	key string
	val Duration
}

// positive returns the error of the first duration that is not positive.
func positive(ds ...durationKey) error {
	for _, d := range ds {
		if d.val <= 0 {
			return invalid(d.key, d.val, "must be positive")
		}
	}
	return nil
}

// Validate checks every value and returns the first problem, naming its key.
func (c *Config) Validate() error {
	ports := []struct {
		key string
		val int
	}{
		{"NATS_PORT (nats.port)", c.NATS.Port},
		{"METRICS_PORT (metrics.port)", c.Metrics.Port},
		{"BROKER_PORT (server.broker_port)", c.Server.BrokerPort},
		{"LB_PORT (server.lb_port)", c.Server.LBPort},
		{"CACHE_PORT (server.cache_port)", c.Server.CachePort},
		{"STREAM_PORT (server.stream_port)", c.Server.StreamPort},
		{"WORKER_PORT (server.worker_port)", c.Server.WorkerPort},
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.val < 0 || p.val > 65535 {
			return invalid(p.key, p.val, "must be a port from 0 to 65535")
		}
		if p.val != 0 {
			if other, dup := seen[p.val]; dup {
				return invalid(p.key, p.val, "already used by "+other)
			}
			seen[p.val] = p.key
		}
	}
	for _, s := range c.sections() {
		if err := s.validate(); err != nil {
			return err
		}
	}
	if c.DataDir == "" {
		return invalid("DATA_DIR (data_dir)", `""`, "must name a directory")
	}
	return validateServices(c.Services)
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

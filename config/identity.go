package config

import (
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Identity is the `service:` section kept from the first configuration
// format: the name this process goes by, and its log level.
type Identity struct {
	// Name is the process's name: the `app` attribute of every log
	// line, and the prefix of its NATS connection names when
	// nats.client_name is empty.
	Name string `yaml:"name" env:"SERVICE_NAME"`
	// LogLevel is another name for log.level. Empty: log.level decides.
	// When both are set, the environment beats the file, and within one of
	// them log.level beats service.log_level: LOG_LEVEL, then
	// SERVICE_LOG_LEVEL, then log.level, then service.log_level, then info.
	LogLevel string `yaml:"log_level" env:"SERVICE_LOG_LEVEL"`
}

func (s *Identity) defaults() { s.Name = "switchyard" }

func (s *Identity) validate() error {
	if s.Name == "" || len(s.Name) > 64 || strings.ContainsFunc(s.Name, func(r rune) bool {
		return r <= ' ' || r == '*' || r == '>' || r > '~'
	}) {
		return invalid("SERVICE_NAME (service.name)", strconv.Quote(s.Name), "must be 1 to 64 printable ASCII characters without spaces, * or >")
	}
	if s.LogLevel != "" && !validLevel(s.LogLevel) {
		return invalid("SERVICE_LOG_LEVEL (service.log_level)", strconv.Quote(s.LogLevel), "must be debug, info, warn or error")
	}
	return nil
}

func validLevel(l string) bool {
	return slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(l))
}

// ClientName is the prefix of this process's NATS connection names:
// nats.client_name, or service.name when that is empty.
func (c *Config) ClientName() string {
	if c.NATS.ClientName != "" {
		return c.NATS.ClientName
	}
	return c.Service.Name
}

// resolveLogLevel sets Log.Level from the first of LOG_LEVEL,
// SERVICE_LOG_LEVEL, log.level in the file, service.log_level in the file,
// and the default. raw is the YAML file (nil: none).
func (c *Config) resolveLogLevel(raw []byte, environ map[string]string) {
	var probe struct {
		Log struct {
			Level string `yaml:"level"`
		} `yaml:"log"`
		Service struct {
			LogLevel string `yaml:"log_level"`
		} `yaml:"service"`
	}
	if raw != nil {
		_ = yaml.Unmarshal(raw, &probe) // the strict decode already succeeded
	}
	for _, l := range []string{environ["LOG_LEVEL"], environ["SERVICE_LOG_LEVEL"], probe.Log.Level, probe.Service.LogLevel} {
		if l != "" {
			c.Log.Level = l
			return
		}
	}
}

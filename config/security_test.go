package config_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

// The seed's config.yaml example, in examples/config.seed.yaml, loads
// unchanged, and each key lands where it acts.
func TestSeedConfigLoadsVerbatim(t *testing.T) {
	c, err := config.Load("../examples/config.seed.yaml", map[string]string{})
	if err != nil {
		t.Fatalf("the seed's config.yaml is refused: %v", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"service.name", c.Service.Name, "go-integration-service"},
		{"service.name as the NATS client name", c.ClientName(), "go-integration-service"},
		{"service.log_level", c.Log.Level, "info"},
		{"nats.url", c.NATS.URL, "nats://localhost:4222"},
		{"nats.cluster_id", c.NATS.ClusterID, "test-cluster"},
		{"nats.max_reconnects", c.NATS.MaxReconnects, -1},
		{"redis.addr", c.Redis.Addr, "localhost:6379"},
		{"redis.db", c.Redis.DB, 0},
		{"redis.pool_size", c.Redis.PoolSize, 10},
		{"rust.vision_service_url", c.Rust.VisionServiceURL, "http://localhost:8001"},
		{"rust.ai_service_url", c.Rust.AIServiceURL, "http://localhost:8002"},
		{"rust.analytics_service_url", c.Rust.AnalyticsServiceURL, "http://localhost:8003"},
		{"rust.health_check_interval", c.Rust.HealthCheckInterval.D(), 30 * time.Second},
		{"rust.request_timeout", c.Rust.RequestTimeout.D(), 30 * time.Second},
		{"metrics.enabled", c.Metrics.Enabled, true},
		{"metrics.port", c.Metrics.Port, 9090},
		{"metrics.path", c.Metrics.Path, "/metrics"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	// Unknown keys are still refused, next to the seed's.
	_, err = load(t, "service:\n  name: x\n  colour: blue\n", nil)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key: err %v, want ErrInvalid naming colour", err)
	}
}

func TestSecurityDefaults(t *testing.T) {
	c := config.Default()
	if c.NATS.Host != "127.0.0.1" || c.NATS.Exposed() {
		t.Errorf("nats.host = %q (exposed %v), want 127.0.0.1", c.NATS.Host, c.NATS.Exposed())
	}
	if c.NATS.MaxReconnects != -1 {
		t.Errorf("nats.max_reconnects = %d, want -1", c.NATS.MaxReconnects)
	}
	if len(c.Server.TrustedProxies) != 0 || c.Metrics.Port != 0 || c.Service.Name != "switchyard" || c.ClientName() != "switchyard" {
		t.Errorf("defaults: trusted_proxies %v, metrics.port %d, service.name %q, client name %q",
			c.Server.TrustedProxies, c.Metrics.Port, c.Service.Name, c.ClientName())
	}
	for host, exposed := range map[string]bool{
		"127.0.0.1": false, "127.0.0.2": false, "::1": false, "[::1]": false, "localhost": false, "LOCALHOST": false,
		"": true, "0.0.0.0": true, "::": true, "10.0.0.1": true, "nats.example.com": true,
	} {
		n := config.NATS{Host: host}
		if n.Exposed() != exposed {
			t.Errorf("Exposed(%q) = %v, want %v", host, n.Exposed(), exposed)
		}
	}
}

func TestSecurityEnvKeys(t *testing.T) {
	cases := []struct {
		env  map[string]string
		get  func(*config.Config) any
		want any
	}{
		{map[string]string{"NATS_HOST": "0.0.0.0", "NATS_USER": "u", "NATS_PASSWORD": "p"},
			func(c *config.Config) any { return []string{c.NATS.Host, c.NATS.User, c.NATS.Password} }, []string{"0.0.0.0", "u", "p"}},
		{map[string]string{"NATS_TOKEN": "t"}, func(c *config.Config) any { return c.NATS.Token }, "t"},
		{map[string]string{"NATS_URL": "nats://x:4222", "NATS_CREDS": "/a.creds"}, func(c *config.Config) any { return c.NATS.CredsFile }, "/a.creds"},
		{map[string]string{"NATS_URL": "nats://x:4222", "NATS_NKEY": "/u.nk"}, func(c *config.Config) any { return c.NATS.NKeyFile }, "/u.nk"},
		{map[string]string{"NATS_URL": "tls://x:4222", "NATS_TLS_CA": "ca", "NATS_TLS_CERT": "c", "NATS_TLS_KEY": "k"},
			func(c *config.Config) any { return []string{c.NATS.TLSCA, c.NATS.TLSCert, c.NATS.TLSKey} }, []string{"ca", "c", "k"}},
		{map[string]string{"NATS_MAX_RECONNECTS": "7"}, func(c *config.Config) any { return c.NATS.MaxReconnects }, 7},
		{map[string]string{"NATS_CLUSTER_ID": "eu"}, func(c *config.Config) any { return c.NATS.ClusterID }, "eu"},
		{map[string]string{"METRICS_PORT": "9191"}, func(c *config.Config) any { return c.Metrics.Port }, 9191},
		{map[string]string{"SERVICE_NAME": "svc"}, func(c *config.Config) any { return c.ClientName() }, "svc"},
		{map[string]string{"SERVICE_NAME": "svc", "NATS_CLIENT_NAME": "conn"}, func(c *config.Config) any { return c.ClientName() }, "conn"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1"},
			func(c *config.Config) any { return c.Server.TrustedPrefixes() },
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}},
	}
	for _, tc := range cases {
		c := mustLoad(t, "", tc.env)
		if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.env, got, tc.want)
		}
	}
	c := mustLoad(t, "server:\n  trusted_proxies: [172.16.0.0/12]\n", nil)
	if got := c.Server.TrustedPrefixes(); len(got) != 1 || got[0] != netip.MustParsePrefix("172.16.0.0/12") {
		t.Errorf("trusted_proxies from YAML: %v", got)
	}
}

// Log level: the environment beats the file; within each, log.level beats
// its alias service.log_level.
func TestLogLevelPrecedence(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"default", "", nil, "info"},
		{"service.log_level alone", "service:\n  log_level: debug\n", nil, "debug"},
		{"log.level beats service.log_level", "service:\n  log_level: debug\nlog:\n  level: error\n", nil, "error"},
		{"SERVICE_LOG_LEVEL beats the file", "log:\n  level: error\n", map[string]string{"SERVICE_LOG_LEVEL": "warn"}, "warn"},
		{"LOG_LEVEL beats SERVICE_LOG_LEVEL", "", map[string]string{"SERVICE_LOG_LEVEL": "warn", "LOG_LEVEL": "debug"}, "debug"},
		{"SERVICE_LOG_LEVEL alone", "", map[string]string{"SERVICE_LOG_LEVEL": "error"}, "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustLoad(t, tc.yaml, tc.env).Log.Level; got != tc.want {
				t.Errorf("log level %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecurityErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string // in the error
	}{
		{"user without password", "", map[string]string{"NATS_USER": "u"}, "NATS_PASSWORD (nats.password)"},
		{"password without user", "", map[string]string{"NATS_PASSWORD": "p"}, "NATS_USER (nats.user)"},
		{"token and user", "", map[string]string{"NATS_TOKEN": "t", "NATS_USER": "u", "NATS_PASSWORD": "p"}, "NATS_TOKEN (nats.token)"},
		{"creds and nkey", "", map[string]string{"NATS_URL": "nats://x:1", "NATS_CREDS": "a", "NATS_NKEY": "b"}, "NATS_NKEY (nats.nkey)"},
		{"cert without key", "", map[string]string{"NATS_URL": "nats://x:1", "NATS_TLS_CERT": "c"}, "NATS_TLS_CERT (nats.tls_cert)"},
		{"key without cert", "", map[string]string{"NATS_URL": "nats://x:1", "NATS_TLS_KEY": "k"}, "NATS_TLS_CERT (nats.tls_cert)"},
		{"creds without NATS_URL", "", map[string]string{"NATS_CREDS": "a"}, "NATS_CREDS (nats.creds)"},
		{"TLS CA without NATS_URL", "", map[string]string{"NATS_TLS_CA": "a"}, "NATS_TLS_CA (nats.tls_ca)"},
		{"max_reconnects -2", "nats:\n  max_reconnects: -2\n", nil, "NATS_MAX_RECONNECTS (nats.max_reconnects)=-2"},
		{"bad trusted proxy", "", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,nope"}, `TRUSTED_PROXIES (server.trusted_proxies)="10.0.0.0/8,nope": "nope" is not an IP or CIDR`},
		{"bad CIDR", "server:\n  trusted_proxies: [10.0.0.0/33]\n", nil, "TRUSTED_PROXIES (server.trusted_proxies)"},
		{"empty service name", "service:\n  name: \"\"\n", nil, "SERVICE_NAME (service.name)"},
		{"service name with a space", "", map[string]string{"SERVICE_NAME": "a b"}, "SERVICE_NAME (service.name)"},
		{"bad service.log_level", "service:\n  log_level: loud\n", nil, "SERVICE_LOG_LEVEL (service.log_level)"},
		{"metrics port clash", "", map[string]string{"METRICS_PORT": "8082"}, "already used"},
		{"metrics port range", "", map[string]string{"METRICS_PORT": "70000"}, "METRICS_PORT (metrics.port)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, tc.env)
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInvalid containing %q", err, tc.want)
			}
			for _, secret := range []string{"NATS_PASSWORD", "NATS_TOKEN"} {
				if v := tc.env[secret]; v != "" && strings.Contains(err.Error(), "="+v) {
					t.Errorf("the error shows the secret %s: %v", secret, err)
				}
			}
		})
	}
}

func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "1.2.3.4", "x", "1.2.3.4/40", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := config.ParsePrefixes(strings.Split(s, ","))
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("ParsePrefixes(%q) gave %v", s, p)
			}
		}
	})
}

package config

import (
	"strconv"
	"time"

	"github.com/switchyard/switchyard/subjects"
)

// Cache configures the cache coordinator: its tiers, namespaces and limits.
// Environment names start with CACHE_. Every field says what its zero value
// means; defaults sets the rest.
type Cache struct {
	// MaxValueBytes bounds one value; larger values get 413 (default 1 MiB).
	// Bodies are also bounded by server.max_body_bytes.
	MaxValueBytes int `yaml:"max_value_bytes" env:"CACHE_MAX_VALUE_BYTES"`
	// MaxKeyBytes bounds one key in bytes of UTF-8 (default 1024).
	MaxKeyBytes int `yaml:"max_key_bytes" env:"CACHE_MAX_KEY_BYTES"`
	// MaxBatchKeys bounds the keys or items of one batch (default 1000).
	MaxBatchKeys int `yaml:"max_batch_keys" env:"CACHE_MAX_BATCH_KEYS"`
	// MaxTTL bounds a TTL (default 8760h, one year).
	MaxTTL Duration `yaml:"max_ttl" env:"CACHE_MAX_TTL"`
	// DefaultTTL applies to writes without a TTL in namespaces not listed
	// under namespaces; 0 means no expiry.
	DefaultTTL Duration `yaml:"default_ttl" env:"CACHE_DEFAULT_TTL"`
	// Policy is the local tier's eviction policy for namespaces not listed
	// under namespaces: "tinylfu" (W-TinyLFU, default) or "lru".
	Policy string `yaml:"policy" env:"CACHE_POLICY"`
	// LocalMaxBytes bounds the local store shared by the namespaces not
	// listed under namespaces, and is the default of a listed one (64 MiB).
	LocalMaxBytes int64 `yaml:"local_max_bytes" env:"CACHE_LOCAL_MAX_BYTES"`
	// LocalMaxAge caps how long an entry stays in a local tier, whatever its
	// TTL: it bounds staleness after a write that bypassed the coordinator
	// (e.g. straight into the bucket). 0 means only the TTL (default 5m).
	LocalMaxAge Duration `yaml:"local_max_age" env:"CACHE_LOCAL_MAX_AGE"`
	// SharedMaxBytes bounds the JetStream KV shared tier; when full, the
	// oldest writes are dropped (default 1 GiB). Redis is bounded by its
	// own maxmemory.
	SharedMaxBytes int64 `yaml:"shared_max_bytes" env:"CACHE_SHARED_MAX_BYTES"`
	// SharedTimeout bounds one shared-tier operation (default 2s).
	SharedTimeout Duration `yaml:"shared_timeout" env:"CACHE_SHARED_TIMEOUT"`
	// MaxInFlight bounds the NATS cache requests one process has waiting on
	// the shared tier; beyond it they are answered 503 at once (default 1024).
	MaxInFlight int `yaml:"max_in_flight" env:"CACHE_MAX_IN_FLIGHT"`
	// Namespaces configures namespaces one by one (YAML only).
	Namespaces map[string]CacheNamespace `yaml:"namespaces"`
}

// CacheNamespace is the configuration of one namespace.
type CacheNamespace struct {
	// DefaultTTL applies to writes without a TTL; 0 means no expiry.
	DefaultTTL Duration `yaml:"default_ttl"`
	// Policy is "tinylfu" or "lru"; empty means cache.policy.
	Policy string `yaml:"policy"`
	// LocalMaxBytes bounds the namespace's own local store; 0 means
	// cache.local_max_bytes.
	LocalMaxBytes int64 `yaml:"local_max_bytes"`
	// LocalMaxAge caps an entry's life in the local store; 0 means
	// cache.local_max_age.
	LocalMaxAge Duration `yaml:"local_max_age"`
	// Local false sends every read to the shared tier; absent means true.
	Local *bool `yaml:"local"`
}

// UsesLocal reports whether the namespace uses the local tier.
func (n CacheNamespace) UsesLocal() bool { return n.Local == nil || *n.Local }

// Cache eviction policies.
const (
	CachePolicyLRU     = "lru"
	CachePolicyTinyLFU = "tinylfu"
)

func (x *Cache) defaults() {
	*x = Cache{
		MaxValueBytes:  1 << 20,
		MaxKeyBytes:    1024,
		MaxBatchKeys:   1000,
		MaxTTL:         Duration(365 * 24 * time.Hour),
		Policy:         CachePolicyTinyLFU,
		LocalMaxBytes:  64 << 20,
		LocalMaxAge:    Duration(5 * time.Minute),
		SharedMaxBytes: 1 << 30,
		SharedTimeout:  Duration(2 * time.Second),
		MaxInFlight:    1024,
	}
}

func validPolicy(p string) bool { return p == CachePolicyLRU || p == CachePolicyTinyLFU }

func (x *Cache) validate() error {
	switch {
	case x.MaxValueBytes < 1 || x.MaxValueBytes > 64<<20:
		return invalid("CACHE_MAX_VALUE_BYTES (cache.max_value_bytes)", x.MaxValueBytes, "must be 1 to 67108864 (64 MiB)")
	case x.MaxKeyBytes < 1 || x.MaxKeyBytes > 2048:
		return invalid("CACHE_MAX_KEY_BYTES (cache.max_key_bytes)", x.MaxKeyBytes, "must be 1 to 2048")
	case x.MaxBatchKeys < 1 || x.MaxBatchKeys > 1024:
		return invalid("CACHE_MAX_BATCH_KEYS (cache.max_batch_keys)", x.MaxBatchKeys, "must be 1 to 1024")
	case x.MaxTTL < Duration(time.Second):
		return invalid("CACHE_MAX_TTL (cache.max_ttl)", x.MaxTTL, "must be at least 1s")
	case x.DefaultTTL < 0 || x.DefaultTTL > x.MaxTTL:
		return invalid("CACHE_DEFAULT_TTL (cache.default_ttl)", x.DefaultTTL, "must be 0 (no expiry) up to cache.max_ttl")
	case !validPolicy(x.Policy):
		return invalid("CACHE_POLICY (cache.policy)", strconv.Quote(x.Policy), `must be "tinylfu" or "lru"`)
	case x.LocalMaxBytes < 1<<10:
		return invalid("CACHE_LOCAL_MAX_BYTES (cache.local_max_bytes)", x.LocalMaxBytes, "must be at least 1024")
	case x.LocalMaxAge < 0:
		return invalid("CACHE_LOCAL_MAX_AGE (cache.local_max_age)", x.LocalMaxAge, "must not be negative")
	case x.SharedMaxBytes < 1<<20:
		return invalid("CACHE_SHARED_MAX_BYTES (cache.shared_max_bytes)", x.SharedMaxBytes, "must be at least 1048576 (1 MiB)")
	case x.SharedTimeout <= 0:
		return invalid("CACHE_SHARED_TIMEOUT (cache.shared_timeout)", x.SharedTimeout, "must be positive")
	case x.MaxInFlight < 1:
		return invalid("CACHE_MAX_IN_FLIGHT (cache.max_in_flight)", x.MaxInFlight, "must be at least 1")
	}
	for name, n := range x.Namespaces {
		key := "cache.namespaces." + name
		switch {
		case subjects.ValidName(name) != nil:
			return invalid(key, strconv.Quote(name), "namespace names are 1 to 64 characters of a-z, 0-9, '_' and '-'")
		case n.Policy != "" && !validPolicy(n.Policy):
			return invalid(key+".policy", strconv.Quote(n.Policy), `must be "tinylfu" or "lru"`)
		case n.DefaultTTL < 0 || n.DefaultTTL > x.MaxTTL:
			return invalid(key+".default_ttl", n.DefaultTTL, "must be 0 (no expiry) up to cache.max_ttl")
		case n.LocalMaxBytes != 0 && n.LocalMaxBytes < 1<<10:
			return invalid(key+".local_max_bytes", n.LocalMaxBytes, "must be 0 (cache.local_max_bytes) or at least 1024")
		case n.LocalMaxAge < 0:
			return invalid(key+".local_max_age", n.LocalMaxAge, "must not be negative")
		}
	}
	return nil
}

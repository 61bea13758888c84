package config

// Cache configures the cache coordinator: its tiers, namespaces and limits.
// Environment names start with CACHE_. Every field says what its zero value
// means; defaults sets the rest.
type Cache struct{}

func (x *Cache) defaults() {}

func (x *Cache) validate() error { return nil }

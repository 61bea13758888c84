package config

import (
	"net"
	"strconv"
)

// Redis configures the optional Redis shared cache tier.
type Redis struct {
	// Addr empty keeps the shared tier on JetStream KV.
	Addr     string `yaml:"addr" env:"REDIS_ADDR"`
	DB       int    `yaml:"db" env:"REDIS_DB"`
	PoolSize int    `yaml:"pool_size" env:"REDIS_POOL_SIZE"`
}

func (r *Redis) defaults() { r.DB, r.PoolSize = 0, 10 }

func (r *Redis) validate() error {
	if r.Addr != "" {
		if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			return invalid("REDIS_ADDR (redis.addr)", strconv.Quote(r.Addr), "must be host:port")
		}
	}
	if r.DB < 0 || r.DB > 15 {
		return invalid("REDIS_DB (redis.db)", r.DB, "must be 0 to 15")
	}
	if r.PoolSize < 1 {
		return invalid("REDIS_POOL_SIZE (redis.pool_size)", r.PoolSize, "must be at least 1")
	}
	return nil
}

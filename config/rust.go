package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Rust configures the default Rust services and how they are checked.
type Rust struct {
	VisionServiceURL    string   `yaml:"vision_service_url" env:"RUST_VISION_SERVICE_URL"`
	AIServiceURL        string   `yaml:"ai_service_url" env:"RUST_AI_SERVICE_URL"`
	AnalyticsServiceURL string   `yaml:"analytics_service_url" env:"RUST_ANALYTICS_SERVICE_URL"`
	HealthCheckInterval Duration `yaml:"health_check_interval" env:"RUST_HEALTH_CHECK_INTERVAL"`
	RequestTimeout      Duration `yaml:"request_timeout" env:"RUST_REQUEST_TIMEOUT"`
}

func (r *Rust) defaults() {
	*r = Rust{
		VisionServiceURL:    "http://localhost:8001",
		AIServiceURL:        "http://localhost:8002",
		AnalyticsServiceURL: "http://localhost:8003",
		HealthCheckInterval: Duration(30 * time.Second),
		RequestTimeout:      Duration(30 * time.Second),
	}
}

func (r *Rust) validate() error {
	for _, u := range []struct{ key, val string }{
		{"RUST_VISION_SERVICE_URL (rust.vision_service_url)", r.VisionServiceURL},
		{"RUST_AI_SERVICE_URL (rust.ai_service_url)", r.AIServiceURL},
		{"RUST_ANALYTICS_SERVICE_URL (rust.analytics_service_url)", r.AnalyticsServiceURL},
	} {
		for _, one := range SplitList(u.val) {
			if err := validHTTPURL(one); err != nil {
				return invalid(u.key, strconv.Quote(u.val), err.Error())
			}
		}
	}
	return positive(
		durationKey{"RUST_HEALTH_CHECK_INTERVAL (rust.health_check_interval)", r.HealthCheckInterval},
		durationKey{"RUST_REQUEST_TIMEOUT (rust.request_timeout)", r.RequestTimeout},
	)
}

func validHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

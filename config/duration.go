package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration read as a number of seconds ("30", "0.5") or
// as a Go duration ("500ms", "2m"), in YAML and in the environment alike.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses seconds or a Go duration. It refuses NaN, infinities
// and values beyond what a time.Duration holds (about ±292 years).
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		switch {
		case math.IsNaN(ns) || math.IsInf(ns, 0):
			return errNotDuration
		case ns >= math.MaxInt64 || ns < math.MinInt64:
			return fmt.Errorf("duration out of range: %s seconds (at most about 292 years either way)", s)
		}
		*d = Duration(ns)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errNotDuration
	}
	*d = Duration(v)
	return nil
}

var errNotDuration = errors.New("not a duration: want seconds (30) or a Go duration (500ms, 2m)")

// MarshalText writes d as a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML accepts the same forms as UnmarshalText.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %q: %w", n.Line, n.Value, err)
	}
	return nil
}

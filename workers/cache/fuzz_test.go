package cache_test

import (
	"errors"
	"testing"

	"github.com/switchyard/switchyard/workers/cache"
)

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`{"keys":["a"]}`, `{"op":"set","items":[{"key":"k","value":"AA==","encoding":"base64","ttl":5}]}`,
		`{"op":"delete","ns":"x","keys":[]}`, `{`, `[]`, `{"keys":["a"]}{}`, `{"items":[{"key":"k","value":null}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := cache.DecodeBatch(data); err != nil && !errors.Is(err, cache.ErrInvalidBatch) {
			t.Fatalf("error %v does not wrap ErrInvalidBatch", err)
		}
	})
}

func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"", "0", "60", "-1", "1.5", "x", "99999999999999999999", "+5", " 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := cache.ParseTTL(s)
		switch {
		case err != nil && !errors.Is(err, cache.ErrInvalidTTL):
			t.Fatalf("%q: error %v does not wrap ErrInvalidTTL", s, err)
		case err == nil && s == "" && d != cache.DefaultTTL:
			t.Fatalf("empty TTL gave %v", d)
		case err == nil && s != "" && d < 0:
			t.Fatalf("%q gave a negative TTL %v", s, d)
		}
	})
}

package kvtier_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard/switchyard/workers/cache/kvtier"
)

// Every key maps to a valid KV key and back.
func FuzzKeyEncoding(f *testing.F) {
	for _, k := range []string{"plain", "a.b", "=x", "sp ace", "ü", "a/b", "*", ">", "..", "-"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" || !utf8.ValidString(key) {
			return
		}
		enc := kvtier.EncodeKey("ns", key)
		for _, c := range enc {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_=./", c)) {
				t.Fatalf("%q encodes to %q, which holds %q", key, enc, c)
			}
		}
		if strings.HasSuffix(enc, ".") || strings.Contains(enc, "..") {
			t.Fatalf("%q encodes to %q, not a valid KV key", key, enc)
		}
		ns, got, err := kvtier.DecodeKey(enc)
		if err != nil || ns != "ns" || got != key {
			t.Fatalf("%q -> %q -> %q %q %v", key, enc, ns, got, err)
		}
	})
}

package subjects_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard/switchyard/subjects"
)

var (
	name64  = strings.Repeat("a", 64)
	name65  = strings.Repeat("a", 65)
	tok128  = strings.Repeat("t", 128)
	tok129  = strings.Repeat("t", 129)
	tokens  = func(n int) []string { return slices.Repeat([]string{"t"}, n) }
	badName = []string{
		"", name65, "Vision", "vi.sion", "vi*", "vi>", "vi sion", "_vision", "-vision",
		"vi/sion", "visión", "vi\x00", "vi\tsion", "$SRV",
	}
)

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "0", "vision", "ai", "a_b-c", "9lives", "a-", "a_", name64} {
		if err := subjects.ValidName(s); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range badName {
		if err := subjects.ValidName(s); !errors.Is(err, subjects.ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestValidToken(t *testing.T) {
	for _, s := range []string{"a", "A", "42", "_", "-", "a-b_c", "%20", "a/b", "$x", "~!@#", tok128, "x=1&y=2"} {
		if err := subjects.ValidToken(s); err != nil {
			t.Errorf("ValidToken(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", tok129, "a.b", ".", "*", ">", "a*", "a>", "a b", " ", "\t", "a\nb", "\x00", "\x7f", "é", "日本"} {
		if err := subjects.ValidToken(s); !errors.Is(err, subjects.ErrInvalid) {
			t.Errorf("ValidToken(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestBuilders(t *testing.T) {
	type builder func() (string, error)
	cases := []struct {
		name string
		call builder
		want string // "" means ErrInvalid
	}{
		{"Service", func() (string, error) { return subjects.Service("vision", "items", "42") }, "svc.vision.items.42"},
		{"Service one token", func() (string, error) { return subjects.Service("ai", "_") }, "svc.ai._"},
		{"Service 16 tokens", func() (string, error) { return subjects.Service("ai", tokens(16)...) }, "svc.ai" + strings.Repeat(".t", 16)},
		{"Service 128-char token", func() (string, error) { return subjects.Service("ai", tok128) }, "svc.ai." + tok128},
		{"Service no token", func() (string, error) { return subjects.Service("vision") }, ""},
		{"Service 17 tokens", func() (string, error) { return subjects.Service("ai", tokens(17)...) }, ""},
		{"Service empty token", func() (string, error) { return subjects.Service("ai", "a", "") }, ""},
		{"Service dotted token", func() (string, error) { return subjects.Service("ai", "a.b") }, ""},
		{"Service wildcard token", func() (string, error) { return subjects.Service("ai", "*") }, ""},
		{"Service full wildcard token", func() (string, error) { return subjects.Service("ai", ">") }, ""},
		{"Service space token", func() (string, error) { return subjects.Service("ai", "a b") }, ""},
		{"Service long token", func() (string, error) { return subjects.Service("ai", tok129) }, ""},
		{"Service bad name", func() (string, error) { return subjects.Service("Vision", "x") }, ""},
		{"Service empty name", func() (string, error) { return subjects.Service("", "x") }, ""},

		{"ServiceAll", func() (string, error) { return subjects.ServiceAll("vision") }, "svc.vision.>"},
		{"ServiceAll bad", func() (string, error) { return subjects.ServiceAll("vi.sion") }, ""},
		{"ServiceQueue", func() (string, error) { return subjects.ServiceQueue("reports") }, "svc.reports"},
		{"ServiceQueue bad", func() (string, error) { return subjects.ServiceQueue("") }, ""},

		{"Job", func() (string, error) { return subjects.Job("vision", "items", "42") }, "jobs.vision.items.42"},
		{"Job no token", func() (string, error) { return subjects.Job("vision") }, ""},
		{"Job bad token", func() (string, error) { return subjects.Job("vision", "a>b") }, ""},
		{"Job 17 tokens", func() (string, error) { return subjects.Job("vision", tokens(17)...) }, ""},
		{"Job bad name", func() (string, error) { return subjects.Job("-x", "a") }, ""},
		{"JobsAll", func() (string, error) { return subjects.JobsAll("ai") }, "jobs.ai.>"},
		{"JobsAll bad", func() (string, error) { return subjects.JobsAll("a*") }, ""},
		{"JobsConsumer", func() (string, error) { return subjects.JobsConsumer("ai") }, "jobs-ai"},
		{"JobsConsumer bad", func() (string, error) { return subjects.JobsConsumer(name65) }, ""},

		{"Cache", func() (string, error) { return subjects.Cache("get", "vision") }, "cache.get.vision"},
		{"Cache bad op", func() (string, error) { return subjects.Cache("GET", "vision") }, ""},
		{"Cache empty op", func() (string, error) { return subjects.Cache("", "vision") }, ""},
		{"Cache bad namespace", func() (string, error) { return subjects.Cache("get", "a.b") }, ""},
		{"Cache empty namespace", func() (string, error) { return subjects.Cache("get", "") }, ""},

		{"StreamIn", func() (string, error) { return subjects.StreamIn("s1") }, "stream.s1.in"},
		{"StreamIn bad", func() (string, error) { return subjects.StreamIn("s.1") }, ""},
		{"StreamOut", func() (string, error) { return subjects.StreamOut("s1") }, "stream.s1.out"},
		{"StreamOut bad", func() (string, error) { return subjects.StreamOut("") }, ""},

		{"BrokerService", func() (string, error) { return subjects.BrokerService("chat", "rooms", "lobby") }, "broker.svc.chat.rooms.lobby"},
		{"BrokerService upper-case topic", func() (string, error) { return subjects.BrokerService("chat", "Lobby") }, "broker.svc.chat.Lobby"},
		{"BrokerService no topic", func() (string, error) { return subjects.BrokerService("chat") }, ""},
		{"BrokerService bad topic", func() (string, error) { return subjects.BrokerService("chat", "a.b") }, ""},
		{"BrokerService 17 topic tokens", func() (string, error) { return subjects.BrokerService("chat", tokens(17)...) }, ""},
		{"BrokerService bad name", func() (string, error) { return subjects.BrokerService("Chat", "x") }, ""},

		{"Presence", func() (string, error) { return subjects.Presence("chat") }, "broker.presence.chat"},
		{"Presence bad", func() (string, error) { return subjects.Presence("chat>") }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if tc.want == "" {
				if !errors.Is(err, subjects.ErrInvalid) {
					t.Fatalf("got (%q, %v), want ErrInvalid", got, err)
				}
				if got != "" {
					t.Errorf("got subject %q with an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got (%q, %v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestBuildersRejectEveryBadName runs each name-taking builder over the
// whole list of bad names.
func TestBuildersRejectEveryBadName(t *testing.T) {
	builders := map[string]func(string) (string, error){
		"Service":       func(n string) (string, error) { return subjects.Service(n, "x") },
		"ServiceAll":    subjects.ServiceAll,
		"ServiceQueue":  subjects.ServiceQueue,
		"Job":           func(n string) (string, error) { return subjects.Job(n, "x") },
		"JobsAll":       subjects.JobsAll,
		"JobsConsumer":  subjects.JobsConsumer,
		"Cache op":      func(n string) (string, error) { return subjects.Cache(n, "ns") },
		"Cache ns":      func(n string) (string, error) { return subjects.Cache("get", n) },
		"StreamIn":      subjects.StreamIn,
		"StreamOut":     subjects.StreamOut,
		"BrokerService": func(n string) (string, error) { return subjects.BrokerService(n, "x") },
		"Presence":      subjects.Presence,
	}
	for bname, b := range builders {
		for _, n := range badName {
			if s, err := b(n); !errors.Is(err, subjects.ErrInvalid) {
				t.Errorf("%s(%q) = (%q, %v), want ErrInvalid", bname, n, s, err)
			}
		}
		if _, err := b(name64); err != nil {
			t.Errorf("%s(64-char name) = %v, want nil", bname, err)
		}
	}
}

func TestPathTokens(t *testing.T) {
	seventeen := "/" + strings.Join([]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}, "/")
	sixteen := strings.TrimSuffix(seventeen, "/q")
	cases := []struct {
		path string
		want []string
	}{
		{"", []string{"_"}},
		{"/", []string{"_"}},
		{"///", []string{"_"}},
		{"/items", []string{"items"}},
		{"items/42", []string{"items", "42"}},
		{"/items/42/", []string{"items", "42"}},
		{"//a//b", []string{"a", "b"}},
		{"/a.b/c", []string{"a_b", "c"}},
		{"/.", []string{"_"}},
		{"/..", []string{"__"}},
		{"/files/a.tar.gz", []string{"files", "a_tar_gz"}},
		{"/*", []string{"_"}},
		{"/a*b/>", []string{"a_b", "_"}},
		{"/>/x", []string{"_", "x"}},
		{"/a b/ c ", []string{"a_b", "_c_"}},
		{"/a\tb\nc\x00", []string{"a_b_c_"}},
		{"/\x7f", []string{"_"}},
		{"/é", []string{"__"}},
		{"/日本", []string{"______"}},
		{"/%2F/x=1&y", []string{"%2F", "x=1&y"}},
		{"/Items/ID", []string{"Items", "ID"}},
		{sixteen, strings.Split(sixteen[1:], "/")},
		{seventeen, append(strings.Split(sixteen[1:], "/")[:15], "_")},
		{strings.Repeat("/x", 100), append(slices.Repeat([]string{"x"}, 15), "_")},
		{"/" + tok128, []string{tok128}},
		{"/" + tok129, []string{tok128}},
		{"/" + strings.Repeat("é", 100), []string{strings.Repeat("_", 128)}},
		{"/" + strings.Repeat(".", 300) + "/b", []string{strings.Repeat("_", 128), "b"}},
	}
	for _, tc := range cases {
		got := subjects.PathTokens(tc.path)
		if !slices.Equal(got, tc.want) {
			t.Errorf("PathTokens(%q) = %q, want %q", tc.path, got, tc.want)
		}
		if _, err := subjects.Service("svc", got...); err != nil {
			t.Errorf("Service with PathTokens(%q): %v", tc.path, err)
		}
	}
}

// checkSubject fails unless s is a literal subject: non-empty tokens with
// no wildcards and nothing but printable ASCII.
func checkSubject(t *testing.T, s string) {
	t.Helper()
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			t.Fatalf("subject %q has an empty token", s)
		}
		if tok == "*" || tok == ">" || strings.ContainsAny(tok, "*>") {
			t.Fatalf("subject %q has a wildcard", s)
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			t.Fatalf("subject %q holds byte %#x", s, c)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range append([]string{"vision", "a_b-c", name64}, badName...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := subjects.ValidName(s)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalid) {
				t.Fatalf("ValidName(%q) = %v, not ErrInvalid", s, err)
			}
			return
		}
		if len(s) < 1 || len(s) > 64 {
			t.Fatalf("ValidName accepted %q of length %d", s, len(s))
		}
		if s[0] == '_' || s[0] == '-' {
			t.Fatalf("ValidName accepted %q starting with %q", s, s[0])
		}
		for _, c := range []byte(s) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				t.Fatalf("ValidName accepted %q holding %q", s, c)
			}
		}
		// A valid name is a valid token, and every builder takes it.
		if err := subjects.ValidToken(s); err != nil {
			t.Fatalf("valid name %q is not a valid token: %v", s, err)
		}
		for _, b := range []func(string) (string, error){
			subjects.ServiceAll, subjects.ServiceQueue, subjects.JobsAll, subjects.JobsConsumer,
			subjects.StreamIn, subjects.StreamOut, subjects.Presence,
		} {
			if _, err := b(s); err != nil {
				t.Fatalf("builder rejected valid name %q: %v", s, err)
			}
		}
	})
}

func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"a", "42", "a.b", "*", ">", "a b", "é", tok128, tok129, "\x7f", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := subjects.ValidToken(s)
		valid := len(s) >= 1 && len(s) <= 128
		for _, c := range []byte(s) {
			if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
				valid = false
			}
		}
		switch {
		case valid && err != nil:
			t.Fatalf("ValidToken(%q) = %v, want nil", s, err)
		case !valid && !errors.Is(err, subjects.ErrInvalid):
			t.Fatalf("ValidToken(%q) = %v, want ErrInvalid", s, err)
		}
		if err == nil {
			subj, err := subjects.Service("x", s)
			if err != nil {
				t.Fatalf("Service with valid token %q: %v", s, err)
			}
			checkSubject(t, subj)
		}
	})
}

func FuzzPathTokens(f *testing.F) {
	for _, s := range []string{"", "/", "//a//b", "/a.b/*/>", "/a b/é", strings.Repeat("/x", 20), "/" + tok129, "/%2e%2e/x?y=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		toks := subjects.PathTokens(path)
		if len(toks) == 0 {
			t.Fatalf("PathTokens(%q) returned no token", path)
		}
		if len(toks) > subjects.MaxTokens {
			t.Fatalf("PathTokens(%q) returned %d tokens", path, len(toks))
		}
		for _, tok := range toks {
			if err := subjects.ValidToken(tok); err != nil {
				t.Fatalf("PathTokens(%q) gave invalid token %q: %v", path, tok, err)
			}
		}
		// Tokens follow the path's segments: the same count up to MaxTokens,
		// and a clean segment of at most 128 bytes is kept as it is.
		var segs []string
		for _, s := range strings.Split(path, "/") {
			if s != "" {
				segs = append(segs, s)
			}
		}
		switch {
		case len(segs) == 0:
			if !slices.Equal(toks, []string{"_"}) {
				t.Fatalf("PathTokens(%q) = %q, want [_]", path, toks)
			}
		case len(segs) <= subjects.MaxTokens:
			if len(toks) != len(segs) {
				t.Fatalf("PathTokens(%q) = %d tokens for %d segments", path, len(toks), len(segs))
			}
		default:
			if len(toks) != subjects.MaxTokens || toks[subjects.MaxTokens-1] != "_" {
				t.Fatalf("PathTokens(%q) = %q, want %d tokens ending in _", path, toks, subjects.MaxTokens)
			}
		}
		for i, tok := range toks {
			if i >= len(segs) || (len(segs) > subjects.MaxTokens && i == subjects.MaxTokens-1) {
				break
			}
			seg := segs[i]
			if len(seg) > 128 {
				seg = seg[:128]
			}
			if len(tok) != len(seg) {
				t.Fatalf("token %q of segment %q: length %d, want %d", tok, segs[i], len(tok), len(seg))
			}
			if subjects.ValidToken(seg) == nil && tok != seg {
				t.Fatalf("clean segment %q became %q", seg, tok)
			}
		}
	})
}

func FuzzService(f *testing.F) {
	f.Add("vision", "/items/42")
	f.Add("ai", "")
	f.Add("a-b_c", "//a.b//*/>/ /é")
	f.Add("Vision", "/x")
	f.Add("", "/x")
	f.Fuzz(func(t *testing.T, service, path string) {
		toks := subjects.PathTokens(path)
		nameErr := subjects.ValidName(service)
		for _, build := range []struct {
			root string
			fn   func(string, ...string) (string, error)
		}{
			{"svc." + service + ".", subjects.Service},
			{"jobs." + service + ".", subjects.Job},
			{"broker.svc." + service + ".", subjects.BrokerService},
		} {
			subj, err := build.fn(service, toks...)
			if nameErr != nil {
				if !errors.Is(err, subjects.ErrInvalid) || subj != "" {
					t.Fatalf("bad name %q: got (%q, %v), want ErrInvalid", service, subj, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("valid input (%q, %q) rejected: %v", service, path, err)
			}
			checkSubject(t, subj)
			if want := build.root + strings.Join(toks, "."); subj != want {
				t.Fatalf("got %q, want %q", subj, want)
			}
			if !utf8.ValidString(subj) {
				t.Fatalf("subject %q is not UTF-8", subj)
			}
		}
	})
}

func ExampleService() {
	subj, err := subjects.Service("vision", subjects.PathTokens("/items/42")...)
	fmt.Println(subj, err)

	queue, _ := subjects.ServiceQueue("vision")
	fmt.Println(queue)

	_, err = subjects.Service("Vision", "items")
	fmt.Println(errors.Is(err, subjects.ErrInvalid))
	// Output:
	// svc.vision.items.42 <nil>
	// svc.vision
	// true
}

func ExamplePathTokens() {
	fmt.Println(subjects.PathTokens("/items/42"))
	fmt.Println(subjects.PathTokens("//files//report.v2.pdf"))
	fmt.Println(subjects.PathTokens("/"))
	fmt.Println(subjects.PathTokens("/a b/*/>"))
	// Output:
	// [items 42]
	// [files report_v2_pdf]
	// [_]
	// [a_b _ _]
}

func TestServiceOf(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"svc.vision.>", "vision", true},
		{"svc.vision", "vision", true},
		{"svc.ai.embed.v2", "ai", true},
		{"svc.Vision.>", "", false},
		{"svc.", "", false},
		{"svc", "", false},
		{"jobs.vision.>", "", false},
		{"svcx.vision.>", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, ok := subjects.ServiceOf(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ServiceOf(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzServiceOf(f *testing.F) {
	f.Add("svc.vision.>")
	f.Add("svc.a")
	f.Add("svc..x")
	f.Fuzz(func(t *testing.T, s string) {
		name, ok := subjects.ServiceOf(s)
		if !ok {
			if name != "" {
				t.Fatalf("ServiceOf(%q) = %q with ok false", s, name)
			}
			return
		}
		if subjects.ValidName(name) != nil {
			t.Fatalf("ServiceOf(%q) = %q, not a valid name", s, name)
		}
		// What ServiceOf parses, the builders build.
		all, err := subjects.ServiceAll(name)
		if err != nil || !strings.HasPrefix(all, "svc."+name+".") {
			t.Fatalf("ServiceAll(%q) = %q, %v", name, all, err)
		}
	})
}

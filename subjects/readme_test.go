package subjects_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/subjects"
)

// readmeSections maps each "## " section of README.md that documents
// Catalog entries to the Entry.Kind its table rows must hold.
var readmeSections = map[string]string{
	"Subjects":       "subject",
	"Queue groups":   "queue",
	"Streams":        "stream",
	"Buckets":        "bucket",
	"Object stores":  "object store",
	"Consumers":      "consumer",
	"Headers":        "header",
	"Micro services": "micro",
}

// readmeRow is one body row of a table under one of readmeSections.
type readmeRow struct {
	line    int      // 1-based line in README.md
	section string   // "## " title it sits under
	names   []string // backticked tokens of its first column
	text    string   // the whole row
}

var backticked = regexp.MustCompile("`([^`]+)`")

// parseReadme returns the body rows of every table under readmeSections.
// A table is a run of lines starting with "|"; its first line is the
// header and its second the |---| separator, both skipped.
func parseReadme(readme string) []readmeRow {
	var rows []readmeRow
	section := ""
	inTable := 0 // lines seen of the current table
	inFence := false
	for i, line := range strings.Split(readme, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			inTable = 0
			continue
		}
		if inFence {
			continue
		}
		if title, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(title)
			inTable = 0
			continue
		}
		if strings.HasPrefix(line, "#") {
			// A deeper heading (###) stays inside its "##" section;
			// a top heading (#) leaves every section.
			if !strings.HasPrefix(line, "###") {
				section = ""
			}
			inTable = 0
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inTable = 0
			continue
		}
		inTable++
		if inTable <= 2 {
			continue // header and separator
		}
		if _, ok := readmeSections[section]; !ok {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		row := readmeRow{line: i + 1, section: section, text: line}
		for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			row.names = append(row.names, m[1])
		}
		rows = append(rows, row)
	}
	return rows
}

// readmeProblems lists every way readme and catalog disagree.
func readmeProblems(readme string, catalog []subjects.Entry) []string {
	var problems []string
	kindOf := map[string]string{}
	for _, e := range catalog {
		kindOf[e.Pattern] = e.Kind
	}
	rows := parseReadme(readme)
	seen := map[string]int{}
	for _, r := range rows {
		want := readmeSections[r.section]
		if len(r.names) == 0 {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": row under ## "+r.section+" names no `pattern` in its first column")
		}
		for _, n := range r.names {
			kind, ok := kindOf[n]
			switch {
			case !ok:
				problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": `"+n+"` is not in subjects.Catalog()")
			case kind != want:
				problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": `"+n+"` is a "+kind+" but sits under ## "+r.section)
			default:
				seen[n]++
			}
		}
		if !strings.Contains(r.text, "`nats ") {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": row has no `nats ...` CLI example")
		}
	}
	for _, e := range catalog {
		switch n := seen[e.Pattern]; {
		case n == 0:
			problems = append(problems, "subjects.Catalog() "+e.Kind+" `"+e.Pattern+"` has no row in README.md")
		case n > 1:
			problems = append(problems, "subjects.Catalog() "+e.Kind+" `"+e.Pattern+"` has "+strconv.Itoa(n)+" rows in README.md")
		}
	}
	for title := range readmeSections {
		if !strings.Contains("\n"+readme, "\n## "+title+"\n") {
			problems = append(problems, "README.md has no section ## "+title)
		}
	}
	slices.Sort(problems)
	return problems
}

func readReadme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestReadmeMatchesCatalog(t *testing.T) {
	readme := readReadme(t)
	for _, p := range readmeProblems(readme, subjects.Catalog()) {
		t.Error(p)
	}
	// Every pattern also appears somewhere in backticks, exactly as written.
	for _, e := range subjects.Catalog() {
		if !strings.Contains(readme, "`"+e.Pattern+"`") {
			t.Errorf("README.md never writes `%s`", e.Pattern)
		}
	}
}

// TestReadmeCheckDetectsDrift proves readmeProblems fails in both
// directions: a Catalog entry with no README row, and a README row whose
// name is not in Catalog.
func TestReadmeCheckDetectsDrift(t *testing.T) {
	readme := readReadme(t)
	catalog := subjects.Catalog()
	if p := readmeProblems(readme, catalog); len(p) != 0 {
		t.Fatalf("README.md and Catalog disagree already: %v", p)
	}
	rows := parseReadme(readme)

	t.Run("entry removed from README", func(t *testing.T) {
		for _, r := range rows {
			cut := strings.Replace(readme, r.text+"\n", "", 1)
			if cut == readme {
				t.Fatalf("could not cut line %d", r.line)
			}
			if len(readmeProblems(cut, catalog)) == 0 {
				t.Errorf("removing README.md line %d (%v) went unnoticed", r.line, r.names)
			}
		}
	})
	t.Run("entry removed from Catalog", func(t *testing.T) {
		for i, e := range catalog {
			cut := slices.Delete(slices.Clone(catalog), i, i+1)
			if len(readmeProblems(readme, cut)) == 0 {
				t.Errorf("removing Catalog entry %q went unnoticed", e.Pattern)
			}
		}
	})
	t.Run("entry added to Catalog", func(t *testing.T) {
		more := append(slices.Clone(catalog), subjects.Entry{Kind: "subject", Pattern: "new.<thing>"})
		if len(readmeProblems(readme, more)) == 0 {
			t.Error("a Catalog entry with no README row went unnoticed")
		}
	})
	t.Run("row added to README", func(t *testing.T) {
		for title := range readmeSections {
			at := strings.Index(readme, "## "+title+"\n")
			sep := strings.Index(readme[at:], "|---")
			eol := strings.Index(readme[at+sep:], "\n")
			pos := at + sep + eol + 1
			more := readme[:pos] + "| `undocumented.<x>` | x | x | x | `nats sub x` |\n" + readme[pos:]
			if len(readmeProblems(more, catalog)) == 0 {
				t.Errorf("a row not in Catalog under ## %s went unnoticed", title)
			}
		}
	})
	t.Run("row under the wrong section", func(t *testing.T) {
		// Swap the Streams and Buckets titles: every row is now misfiled.
		swapped := strings.NewReplacer("## Streams\n", "## Buckets\n", "## Buckets\n", "## Streams\n").Replace(readme)
		if len(readmeProblems(swapped, catalog)) == 0 {
			t.Error("rows under the wrong section went unnoticed")
		}
	})
	t.Run("pattern respelled", func(t *testing.T) {
		respelled := strings.Replace(readme, "| `svc.<service>.<tokens>` |", "| `svc.<svc>.<tokens>` |", 1)
		if respelled == readme {
			t.Fatal("svc row not found")
		}
		if len(readmeProblems(respelled, catalog)) == 0 {
			t.Error("a respelled pattern went unnoticed")
		}
	})
}

func TestCatalog(t *testing.T) {
	kinds := []string{"subject", "queue", "stream", "bucket", "object store", "consumer", "header", "micro"}
	seen := map[string]bool{}
	for _, e := range subjects.Catalog() {
		if !slices.Contains(kinds, e.Kind) {
			t.Errorf("%q: unknown kind %q", e.Pattern, e.Kind)
		}
		if e.Pattern == "" || strings.ContainsAny(e.Pattern, " \t`|") {
			t.Errorf("%q: pattern cannot be written in a README table", e.Pattern)
		}
		if seen[e.Pattern] {
			t.Errorf("%q listed twice", e.Pattern)
		}
		seen[e.Pattern] = true
	}
	for _, k := range kinds {
		if !slices.ContainsFunc(subjects.Catalog(), func(e subjects.Entry) bool { return e.Kind == k }) {
			t.Errorf("no entry of kind %q", k)
		}
	}
}

// TestCatalogMatchesBuilders checks that each subject, queue and consumer
// pattern is what its builder produces, so Catalog cannot drift from the
// code either.
func TestCatalogMatchesBuilders(t *testing.T) {
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	fill := strings.NewReplacer("<service>", "s1", "<tokens>", "t1", "<topic>", "t1",
		"<op>", "o1", "<namespace>", "n1", "<id>", "i1",
		"<node>", "nd1", "<conn>", "c1", "<path>", "p1", "<correlation>", "r1", "<stream>", "st1")
	got := map[string]string{
		"svc.<service>.<tokens>":                   must(subjects.Service("s1", "t1")),
		"svc.<service>":                            must(subjects.ServiceQueue("s1")),
		"jobs.<service>.<tokens>":                  must(subjects.Job("s1", "t1")),
		"jobs-<service>":                           must(subjects.JobsConsumer("s1")),
		"cache.<op>.<namespace>":                   must(subjects.Cache("o1", "n1")),
		"stream.<id>.in":                           must(subjects.StreamIn("i1")),
		"stream.<id>.out":                          must(subjects.StreamOut("i1")),
		"STREAM_<id>":                              must(subjects.StreamOf("i1")),
		"broker.svc.<service>.<topic>":             must(subjects.BrokerService("s1", "t1")),
		"broker.presence.<service>":                must(subjects.Presence("s1")),
		"broker.persist.<service>.<topic>":         must(subjects.BrokerPersistent("s1", "t1")),
		"broker.dead.<service>.<topic>":            must(subjects.BrokerDead("s1", "t1")),
		"broker.reply.<node>.<conn>.<correlation>": must(subjects.BrokerReply("nd1", "c1", "r1")),
		"broker.undelivered.<node>.<path>":         must(subjects.BrokerUndelivered("nd1", "p1")),
		"broker.svc.<service>":                     must(subjects.BrokerQueue("s1")),
		"broker-<service>":                         must(subjects.BrokerConsumer("s1")),
		"cache.inval.<namespace>":                  must(subjects.Cache(subjects.CacheOpInvalidate, "n1")),
		"$JS.API.STREAM.INFO.<stream>":             subjects.JSStreamInfo("st1"),
	}
	for _, e := range subjects.Catalog() {
		if !strings.Contains(e.Pattern, "<") {
			continue
		}
		g, ok := got[e.Pattern]
		if !ok {
			t.Errorf("Catalog pattern %q has no builder in this test", e.Pattern)
			continue
		}
		if want := fill.Replace(e.Pattern); g != want {
			t.Errorf("builder of %q gives %q, want %q", e.Pattern, g, want)
		}
	}
}

package config

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlLine matches the "line N:" that yaml.v3 and Duration.UnmarshalYAML
// put before each problem.
var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlQuoted finds the value a problem quotes: `abc` (yaml.v3) or "abc"
// (Duration), and the key of "field x not found".
var yamlQuoted = regexp.MustCompile("`([^`]*)`" + `|"((?:[^"\\]|\\.)*)"|field (\S+) not found`)

// yamlError turns a decoding error of the YAML document raw into one line
// that names, for every problem, the key at fault and its environment
// variable: `line 2: server.broker_port (BROKER_PORT): cannot unmarshal
// !!str `abc` into int`. Keys it cannot tell apart are left out.
func yamlError(raw []byte, err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	var parts []string
	for _, p := range strings.Split(msg, "\n") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	var root yaml.Node
	if yaml.Unmarshal(raw, &root) != nil {
		return strings.Join(parts, "; ")
	}
	byLine := map[int][]yamlKey{}
	collectYAMLKeys(&root, "", byLine)
	envOf := yamlEnvKeys(reflect.TypeOf(Config{}), "")
	for i, p := range parts {
		loc := yamlLine.FindStringSubmatchIndex(p)
		if loc == nil {
			continue
		}
		line, _ := strconv.Atoi(p[loc[2]:loc[3]])
		rest := p[loc[1]:]
		key := pickYAMLKey(byLine[line], rest)
		if key == "" {
			continue
		}
		if e, ok := envOf[key]; ok {
			key += " (" + e + ")"
		}
		parts[i] = p[:loc[1]] + key + ": " + rest
	}
	return strings.Join(parts, "; ")
}

// yamlKey is a key of the document: its dotted path and, for a scalar, its value.
type yamlKey struct {
	path   string
	value  string
	name   string // last element of path
	scalar bool
}

// collectYAMLKeys records every mapping key of n under the line of the key
// and, for a scalar value on another line, under that line too.
func collectYAMLKeys(n *yaml.Node, prefix string, byLine map[int][]yamlKey) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectYAMLKeys(c, prefix, byLine)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			yk := yamlKey{path: path, name: k.Value, value: v.Value, scalar: v.Kind == yaml.ScalarNode}
			byLine[k.Line] = append(byLine[k.Line], yk)
			if yk.scalar && v.Line != k.Line {
				byLine[v.Line] = append(byLine[v.Line], yk)
			}
			collectYAMLKeys(v, path, byLine)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			collectYAMLKeys(c, prefix+"["+strconv.Itoa(i)+"]", byLine)
		}
	}
}

// pickYAMLKey chooses the key a problem is about among those on its line:
// the only one, or the one whose value (or name, for an unknown field) the
// problem quotes.
func pickYAMLKey(keys []yamlKey, problem string) string {
	if len(keys) == 1 {
		return keys[0].path
	}
	m := yamlQuoted.FindStringSubmatch(problem)
	if m == nil {
		return ""
	}
	var found []string
	for _, k := range keys {
		switch {
		case m[3] != "" && k.name == m[3],
			m[1] != "" && k.scalar && k.value == m[1],
			m[2] != "" && k.scalar && k.value == unquote(m[2]):
			found = append(found, k.path)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

func unquote(s string) string {
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

// yamlEnvKeys maps each YAML key of t to its environment variable.
func yamlEnvKeys(t reflect.Type, prefix string) map[string]string {
	out := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		if e := f.Tag.Get("env"); e != "" {
			out[path] = strings.Split(e, ",")[0]
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
			for k, v := range yamlEnvKeys(f.Type, path+".") {
				out[k] = v
			}
		}
	}
	return out
}

package main

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/config"
)

// configCheck prints the effective configuration of a valid cfg as YAML,
// with every secret masked. It masks in place the maps cfg shares: cfg is
// not used after it.
func configCheck(stdout, stderr io.Writer, path string, cfg *config.Config) int {
	masked := *cfg
	maskSecrets(reflect.ValueOf(&masked).Elem())
	out, err := yaml.Marshal(&masked)
	if err != nil {
		fmt.Fprintln(stderr, "switchyard: config check:", err)
		return 1
	}
	src := "defaults and environment"
	if path != "" {
		src = path + ", then the environment"
	}
	fmt.Fprintf(stdout, "# configuration is valid (from %s)\n%s", src, out)
	return 0
}

// secretField tells whether a YAML key holds a secret.
func secretField(yamlKey string) bool {
	for _, w := range []string{"password", "token", "secret"} {
		if strings.Contains(yamlKey, w) {
			return true
		}
	}
	return false
}

// maskSecrets replaces, in place, every non-empty secret string of v and
// the password of every URL.
func maskSecrets(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), v.Type().Field(i)
			if !ft.IsExported() {
				continue
			}
			key := strings.Split(ft.Tag.Get("yaml"), ",")[0]
			if f.Kind() == reflect.String && f.String() != "" && secretField(key) {
				f.SetString("REDACTED")
				continue
			}
			maskSecrets(f)
		}
	case reflect.String:
		if v.CanSet() && strings.Contains(v.String(), "@") {
			v.SetString(maskURLs(v.String()))
		}
	case reflect.Map:
		// Maps hold values that cannot be set in place: copy, mask, replace.
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			maskSecrets(e)
			v.SetMapIndex(k, e)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			maskSecrets(v.Index(i))
		}
	}
}

// maskURLs masks the password of each URL in a comma-separated list.
func maskURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		} else {
			u.User = url.User("REDACTED") // a lone user part is a token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

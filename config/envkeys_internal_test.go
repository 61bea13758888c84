package config

import (
	"reflect"
	"slices"
	"testing"
)

// Sections may share field names: the environment keys are collected by
// the whole path, so neither hides the other.
func TestEnvKeysSharedFieldNames(t *testing.T) {
	type a struct {
		TTL Duration `env:"A_TTL"`
	}
	type b struct {
		TTL Duration `env:"B_TTL"`
	}
	type root struct {
		A a
		B b
	}
	got := envKeys(reflect.TypeOf(root{}))
	if want := []string{"A_TTL", "B_TTL"}; !slices.Equal(got["TTL"], want) {
		t.Fatalf("envKeys[TTL] = %v, want %v", got["TTL"], want)
	}
}

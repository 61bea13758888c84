// Package deploy holds the tests that keep the shipped deployment files true:
// docker-compose.yml, Dockerfile, nats.conf and config.example.yaml at the
// repository root, and the Prometheus and Grafana files under deploy/.
//
// There is no Docker engine in CI, so the tests read the files and check them
// against the code instead of running them: every environment name a
// container sets is one the binary reads (from config.Config's env tags),
// every command is a subcommand, every published port is the port the
// process listens on, every mounted file exists and loads (config.Load,
// nats-server's own parser), every Prometheus target names a compose service
// and its port, and every metric a dashboard queries is registered by the
// code. A rename in config/, edge/ or cmd/ that a deployment file misses
// fails `go test ./deploy/`.
//
// The package has no non-test code.
package deploy

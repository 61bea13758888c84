# syntax=docker/dockerfile:1

# Switchyard: one static binary, every edge and worker pool as a subcommand.
#   docker build --build-arg VERSION=$(git describe --always) -t switchyard .
#   docker run --rm -p 8081-8084:8081-8084 switchyard          # run: everything, embedded NATS (container-local)
#   docker run --rm -p 8081-8084:8081-8084 -p 4222:4222 -e NATS_HOST=0.0.0.0 \
#     -e NATS_USER=switchyard -e NATS_PASSWORD=... switchyard    # the embedded NATS reachable, with credentials
#   docker run --rm -e NATS_URL=nats://nats:4222 -p 8082:8082 switchyard lb
# deploy/deploy_test.go keeps this file in step with the code.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/switchyard ./cmd/switchyard \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
# The embedded nats-server's JetStream store (used when NATS_URL is empty).
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data
VOLUME ["/data"]
USER 65532:65532
# broker, lb, cache and stream edges; the embedded NATS client port.
EXPOSE 8081 8082 8083 8084 8085 4222
# No HEALTHCHECK: the image has no shell or HTTP client. Probe GET /health on
# an edge port from the orchestrator instead.
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run"]

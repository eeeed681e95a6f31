# syntax=docker/dockerfile:1
#
# The Go programs of umawide as small, non-root images, one target each:
#
#   docker build --target claims-provider -t umawide/claims-provider .
#   docker build --target resource-server -t umawide/resource-server .
#   docker build --target rqp-client      -t umawide/rqp-client .
#
# compose.yaml builds them the same way. One build stage compiles all three
# (CGO off: the SQLite driver is pure Go), so the module download and the
# compiled packages are shared. The runtime images start FROM scratch: the
# static binary, the CA certificates of the build image (the services call
# Keycloak over https in production), a /tmp, and a state folder owned by the
# non-root user 65532. No shell: the services check their own health with
# their `healthcheck` subcommand. deploy/compose_test.go checks this file.

FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
      ./claims-provider ./resource-server ./rqp-client
# The folders the runtime images need, with their owner and mode.
RUN mkdir -p /rootfs/tmp /rootfs/state && \
    chmod 1777 /rootfs/tmp && \
    chown 65532:65532 /rootfs/state && chmod 0700 /rootfs/state

# The Claims Provider: signing keys under /var/lib/claims-provider/keys (a
# volume shared by its replicas). Port 8081.
FROM scratch AS claims-provider
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/tmp /tmp
COPY --from=build --chown=65532:65532 /rootfs/state /var/lib/claims-provider
COPY --from=build /out/claims-provider /usr/local/bin/claims-provider
USER 65532:65532
ENV CLAIMS_PROVIDER_LISTEN=0.0.0.0:8081 \
    CLAIMS_PROVIDER_KEY_DIR=/var/lib/claims-provider/keys
EXPOSE 8081
VOLUME ["/var/lib/claims-provider"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/claims-provider", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/claims-provider"]

# The Resource Server: SQLite under /var/lib/resource-server unless
# RESOURCE_SERVER_DATABASE_URL names PostgreSQL. Port 8082.
FROM scratch AS resource-server
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/tmp /tmp
COPY --from=build --chown=65532:65532 /rootfs/state /var/lib/resource-server
COPY --from=build /out/resource-server /usr/local/bin/resource-server
USER 65532:65532
ENV RESOURCE_SERVER_LISTEN=0.0.0.0:8082 \
    RESOURCE_SERVER_DB=/var/lib/resource-server/resource-server.db
EXPOSE 8082
VOLUME ["/var/lib/resource-server"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/resource-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/resource-server"]

# The RqP client CLI: `docker compose run rqp-client push ...`. Files to push
# are mounted (or given on standard input with --file -).
FROM scratch AS rqp-client
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/tmp /tmp
COPY --from=build /out/rqp-client /usr/local/bin/rqp-client
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rqp-client"]

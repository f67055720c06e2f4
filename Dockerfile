# syntax=docker/dockerfile:1
# verdict: a static binary on a distroless, non-root base.
#
#   docker build -t verdict .
#   docker run --rm -p 8181:8181 -e VERDICT_ADDR=0.0.0.0:8181 verdict        # the demo bundle
#   docker run --rm -p 8181:8181 -e VERDICT_ADDR=0.0.0.0:8181 \
#     -v "$PWD/my-bundle:/bundles/mine:ro" verdict run --bundle /bundles/mine --watch --state-dir /state
#
# The address is VERDICT_ADDR (default 127.0.0.1:8181), which `verdict run`
# serves on and the HEALTHCHECK probes; prefer it to --addr, which the
# HEALTHCHECK does not see. As a sidecar in a pod, keep the default: the
# service next to it shares the pod's loopback.
#
# test/e2e/container_test.go checks this file's final stage (a state
# directory owned by nonroot, the HEALTHCHECK following VERDICT_ADDR)
# without a Docker daemon.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/verdict ./cmd/verdict
# The state directory, owned by nonroot (65532) in the final image: a volume
# mounted on /state starts as a copy of it, writable by verdict.
RUN mkdir -p /out/state && chmod 0700 /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verdict /verdict
COPY --from=build --chown=65532:65532 /out/state /state
# Bundles are mounted here (one sub-directory or .tar.gz per bundle); state
# that must survive a restart goes to /state.
VOLUME ["/state"]
WORKDIR /bundles
USER nonroot:nonroot
ENV VERDICT_ADDR=127.0.0.1:8181
EXPOSE 8181
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["/verdict", "healthcheck"]
ENTRYPOINT ["/verdict"]
CMD ["run", "--state-dir", "/state"]

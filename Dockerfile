# syntax=docker/dockerfile:1
# verdict: a static binary on a distroless, non-root base.
#
#   docker build -t verdict .
#   docker run --rm -p 8181:8181 verdict run --addr 0.0.0.0:8181              # the demo bundle
#   docker run --rm -p 8181:8181 -v "$PWD/my-bundle:/bundles/mine:ro" \
#     verdict run --addr 0.0.0.0:8181 --bundle /bundles/mine --watch
#
# As a sidecar in a pod, keep the default --addr 127.0.0.1:8181: the service
# next to it shares the pod's loopback.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/verdict ./cmd/verdict

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verdict /verdict
# Bundles are mounted here (one sub-directory or .tar.gz per bundle); state
# that must survive a restart goes to /state.
VOLUME ["/state"]
WORKDIR /bundles
USER nonroot:nonroot
EXPOSE 8181
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["/verdict", "healthcheck", "--url", "http://127.0.0.1:8181/health/ready"]
ENTRYPOINT ["/verdict"]
CMD ["run", "--addr", "127.0.0.1:8181", "--state-dir", "/state"]

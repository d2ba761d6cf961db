# syntax=docker/dockerfile:1
# msnbridge: build with cgo (go-sqlite3), run as an unprivileged user.
#   docker build -t msnbridge .
#   docker run -d --name msnbridge -v msnbridge-data:/data \
#     -e MSNBRIDGE_BRIDGE_ENCRYPTION_KEY=... msnbridge
# /data holds config.yaml, the SQLite database and registration.yaml. With
# no config.yaml there yet: docker run --rm -v msnbridge-data:/data msnbridge -e /data/config.yaml

FROM golang:1.26-bookworm AS build
WORKDIR /src
# go-sqlite3 is C: cgo needs gcc, which the golang image carries.
ENV CGO_ENABLED=1
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/msnbridge ./cmd/msnbridge

FROM debian:12-slim
# ca-certificates: the MSN login and SOAP endpoints are HTTPS; tzdata for
# log timestamps in the operator's zone (TZ=...).
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates tzdata \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 29350 msnbridge \
	&& useradd --system --uid 29350 --gid msnbridge --home-dir /data --shell /usr/sbin/nologin msnbridge \
	&& mkdir -p /data && chown msnbridge:msnbridge /data
COPY --from=build /out/msnbridge /usr/local/bin/msnbridge
USER msnbridge:msnbridge
WORKDIR /data
VOLUME /data
# 29350: the Matrix appservice listener (matrix.listen must then be
# 0.0.0.0:29350 or :29350 inside the container). 29351: the http listener
# (metrics, health, provisioning) when http.listen is set to :29351.
EXPOSE 29350 29351
ENTRYPOINT ["msnbridge"]
CMD ["-c", "/data/config.yaml"]

# The dbinit image for Docker users: the same tree, user and entrypoint as `make image`
# (buildah FROM scratch, no Docker needed), which scripts/image/check.py verifies.
#   docker build -t dbinit:dev .      (make image-docker)
# Static glibc binaries (TLS is rustls + ring: no OpenSSL), FROM scratch: no shell, CA roots,
# /etc/nsswitch.conf for hostAliases lookups, non-root uid 65532. No /migrations: the
# migrations built into the binaries are the default; a derived image adds its own there.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/image/build-bins.sh \
 && scripts/image/rootfs.sh /rootfs target/x86_64-unknown-linux-gnu/release

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/dbinit"]

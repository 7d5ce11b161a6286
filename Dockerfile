# Both binaries, statically linked against musl (TLS is rustls + ring: no OpenSSL), in a
# distroless static image: no shell, CA roots included, non-root uid 65532.
#   docker build -t dbinit:dev .      (make image)
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
      --bin dbinit --bin dbinit-job

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/dbinit /dbinit
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/dbinit-job /dbinit-job
USER 65532:65532
ENTRYPOINT ["/dbinit"]

# syntax=docker/dockerfile:1
# The ifox image: `docker build -t ghcr.io/incidentfox/ifox:<version> .` (README, "Container image").
# One binary and nothing else: streams/ and migrations/ are compiled into it (include_str!,
# sqlx::migrate!), so the runtime image has no shell, no package manager and no files of ours.

# Build on the Debian release the runtime image is made from (bookworm = debian12), so the binary
# asks for no newer glibc than the runtime has. The version is Cargo.toml's rust-version
# (scripts/validate-deploy checks that they agree).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Everything Cargo.toml names (benches/ and integration/ are targets it must find, even when only
# the binary is built); .dockerignore keeps target/ and local state out.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY streams ./streams
COPY migrations ./migrations
COPY benches ./benches
COPY integration ./integration
# --locked: exactly the dependency versions of Cargo.lock, or the build fails. The cache mounts keep
# the registry and the build tree between builds; the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ifox \
 && install -D -m 0755 target/release/ifox /out/ifox

# glibc, libgcc and CA certificates (kube's rustls and PostgreSQL TLS), no shell; user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ifox /usr/local/bin/ifox
# The settings a container always wants; everything else comes from IFOX__… variables.
ENV IFOX__HTTP__LISTEN=0.0.0.0:8080 \
    IFOX__LOG__FORMAT=json
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ifox"]
CMD ["serve"]

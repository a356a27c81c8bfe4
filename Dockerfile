# The Refrain image: the static binary alone, on an empty base, run as a
# non-root user. The binary is built outside the image (no Go toolchain
# image to pull), then copied in:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags=-s -o dist/refrain ./cmd/refrain
#   mkdir -p dist/data
#   docker build -t refrain .        # or: buildah bud --format docker -t refrain .
#
# The binary needs no libc (SQLite is pure Go) and carries its own CA roots
# (golang.org/x/crypto/x509roots/fallback) for Mailgun, store APIs and JWKS.
FROM scratch

COPY dist/refrain /refrain
# A directory the non-root user can write: the default SQLite file lives
# there. With PostgreSQL (REFRAIN_DATABASE_URL=postgres://...) it stays empty.
COPY --chown=65532:65532 dist/data /data

ENV REFRAIN_LISTEN=:8080 \
    REFRAIN_DATABASE_URL=sqlite:/data/refrain.db \
    REFRAIN_LOG_FORMAT=json \
    TMPDIR=/data

USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080

# No shell and no curl in the image: the binary checks itself (GET /healthz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/refrain", "health"]

ENTRYPOINT ["/refrain"]
CMD ["serve"]

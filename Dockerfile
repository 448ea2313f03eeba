# The container image: `docker run -i --rm -e RUNCOMFY_API_KEY ghcr.io/runcomfy-mcp/runcomfy-mcp`
# serves MCP over stdio (what clients that start a container expect). HTTP instead, through the
# environment: -e RUNCOMFY_MCP_TRANSPORT=http -e RUNCOMFY_MCP_AUTH_TOKEN=... -p 8080:8080 (the
# image listens on every address, so the server insists on a token; see the README).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The manifest names a benchmark target, so cargo wants its file even to build the binary.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin runcomfy-mcp \
    && cp target/release/runcomfy-mcp /runcomfy-mcp

# glibc and libgcc, nothing else (TLS roots are compiled in), and a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /runcomfy-mcp /usr/local/bin/runcomfy-mcp
LABEL io.modelcontextprotocol.server.name="io.github.runcomfy-mcp/runcomfy-mcp" \
      org.opencontainers.image.source="https://github.com/runcomfy-mcp/runcomfy-mcp" \
      org.opencontainers.image.description="MCP server for ByteDance Dreamina 4.0 images through RunComfy" \
      org.opencontainers.image.licenses="MIT"
ENV RUNCOMFY_MCP_HOST=0.0.0.0 \
    RUNCOMFY_MCP_PORT=8080 \
    RUNCOMFY_STATE_DIR=/home/nonroot/state
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/runcomfy-mcp"]
CMD ["serve"]

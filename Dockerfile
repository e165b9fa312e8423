# Multi-stage build: compile in the Rust image, run from a slim Debian as a non-root user.
#   docker build -t mailcove .
#   docker run -p 143:143 -p 993:993 -p 110:110 -p 995:995 \
#     -v /srv/mailcove/etc:/etc/mailcove -v /srv/mailcove/mail:/var/mail mailcove
# /etc/mailcove must hold mailcove.toml (start from mailcove.toml.sample), the users file and the
# certificate. Docker lets unprivileged processes bind ports below 1024 inside the container
# (net.ipv4.ip_unprivileged_port_start = 0 since Docker 20.10), so no root is needed at all.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
# Cargo checks that every declared target exists, tests and benches included.
COPY tests ./tests
RUN cargo build --release --locked && strip target/release/mailcove

FROM debian:bookworm-slim
RUN useradd --system --home-dir /var/mail --shell /usr/sbin/nologin mailcove \
 && mkdir -p /etc/mailcove /var/mail && chown mailcove:mailcove /var/mail
COPY --from=build /src/target/release/mailcove /usr/local/bin/mailcove
COPY config/mailcove.toml /etc/mailcove/mailcove.toml.sample
USER mailcove
EXPOSE 143 110 993 995
ENTRYPOINT ["/usr/local/bin/mailcove"]
CMD ["serve", "--config", "/etc/mailcove/mailcove.toml"]

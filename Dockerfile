# fhirgate container image (issue 10, item 7): a multi-stage build, a
# distroless runtime, a non-root user. Nothing here is built by the test
# command; build it with `docker build -t fhirgate .`.
#
# The image listens on 0.0.0.0:8080 and keeps its data (SQLite state and
# ledger, signing keys, demo PKI, bulk files) in /var/lib/fhirgate, a volume.
# In production the state store and ledger are PostgreSQL
# (FHIRGATE_DATABASE_URL) and bulk files go to Azure Blob Storage, so
# replicas are interchangeable; see deploy/azure/ and the README.
#
# Plain HTTP on a non-loopback address needs a TLS-terminating proxy in
# front (README, "TLS"): FHIRGATE_TRUSTED_PROXIES names the private ranges an
# ingress or container network uses, so peers outside them get 403. To
# terminate TLS in the container instead, mount a certificate and key and
# set FHIRGATE_TLS_CERTIFICATE and FHIRGATE_TLS_KEY.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin fhirgate \
 && install -D -m 0755 target/release/fhirgate /out/fhirgate \
 && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/fhirgate /usr/local/bin/fhirgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/fhirgate
ENV FHIRGATE_LISTEN=0.0.0.0:8080 \
    FHIRGATE_TRUSTED_PROXIES=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7 \
    FHIRGATE_DATA_DIR=/var/lib/fhirgate \
    FHIRGATE_LOG_FORMAT=json \
    FHIRGATE_DEMO=0
VOLUME ["/var/lib/fhirgate"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fhirgate"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# The gateway image: slim Python, a non-root user, nothing written outside /tmp, so it
# runs with a read-only root filesystem (Kubernetes: readOnlyRootFilesystem: true).
#
#   docker build -t oidc-gateway .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 \
#     -v "$PWD/gateway.yaml:/etc/gateway/config.yaml:ro" oidc-gateway

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/
COPY gateway ./gateway
# pip compiles the .pyc files here, so the read-only image never needs to write them.
# The constraints pin the versions CI tested (README "Installing").
RUN python -m venv /opt/gateway \
    && /opt/gateway/bin/pip install -c requirements/constraints.txt ".[fast]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="oidc-gateway" \
      org.opencontainers.image.description="Authenticating reverse proxy (OpenID Connect)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gateway
COPY --from=build /opt/gateway /opt/gateway
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    GATEWAY_HEALTHZ_URL=http://127.0.0.1:8080/_gateway/healthz
# Numeric ids, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Change GATEWAY_HEALTHZ_URL with listen.port or prefix (https needs a trusted cert).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['GATEWAY_HEALTHZ_URL'], timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["run", "-c", "/etc/gateway/config.yaml"]

# syntax=docker/dockerfile:1
# Small runtime image for egress (probe, report, compile): `docker build -t egress .`
# Both stages use the same slim base, so the venv's interpreter link stays valid.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# Build the wheel, then install it (and its dependencies) into a venv without pip, so the
# final image carries neither build tools nor an installer.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/egress \
 && python -m pip --python /opt/egress/bin/python install --no-warn-script-location /wheels/*.whl \
 && /opt/egress/bin/egress --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="egress" \
      org.opencontainers.image.description="Compile, apply and prove AKS egress rules behind Azure Firewall." \
      org.opencontainers.image.licenses="MIT"
# The Kubernetes manifests run as this uid (runAsUser: 10001) with a read-only root filesystem.
RUN groupadd --system --gid 10001 egress \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin egress
COPY --from=builder /opt/egress /opt/egress
ENV PATH=/opt/egress/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001
WORKDIR /tmp
ENTRYPOINT ["/opt/egress/bin/egress"]
CMD ["probe", "run", "--help"]

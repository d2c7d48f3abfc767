# The dranspose image. Every component runs from it with a different command:
#   docker run dranspose:0.1.0 controller --redis-url redis://redis:6379/0
#   docker run dranspose:0.1.0 worker --class src.worker:Worker --advertise 10.0.0.7
# Payload images are built FROM it and add their src/ (docs/deployment.md,
# examples/tutorial/Dockerfile). Build: docker build -t dranspose:0.1.0 .

ARG PYTHON_VERSION=3.11

# -- build: install dranspose and its dependencies into a virtual environment ----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dranspose
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dranspose/ ./dranspose/
RUN /opt/dranspose/bin/pip install .

# -- runtime: the same Python, the virtual environment, no build inputs ----------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="dranspose" \
      org.opencontainers.image.description="Distributed, streaming map-reduce over detector event streams" \
      org.opencontainers.image.licenses="BSD-3-Clause"
# DRANSPOSE_HOST: the controller and reducer APIs listen on every interface of the container
# (outside a container they default to loopback; docs/security.md)
ENV PATH=/opt/dranspose/bin:$PATH \
    DRANSPOSE_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A numeric USER lets Kubernetes' runAsNonRoot verify the user without reading /etc/passwd.
RUN groupadd --system --gid 10001 dranspose \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/dranspose \
       --shell /usr/sbin/nologin dranspose
COPY --from=build /opt/dranspose /opt/dranspose
# Payload classes are imported from the working directory: src.worker:Worker is /app/src/worker.py
WORKDIR /app
USER 10001:10001
# controller REST API, reducer results API (the ZMQ data ports are chosen with --data-port)
EXPOSE 5000 5001
# every component stops cleanly on Ctrl-C, as in a terminal
STOPSIGNAL SIGINT
ENTRYPOINT ["dranspose"]
CMD ["--help"]

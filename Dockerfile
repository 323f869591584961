# syntax=docker/dockerfile:1.7
# Two images from one source tree:
#   docker build --target api    -t recon-api .     # .[api]: FastAPI, no torch (numpy/trimesh parse uploads), the web page
#   docker build --target worker -t recon-worker .  # .[worker]: Celery worker, CUDA torch, one per GPU
# Both run the same `recon` console script as a native install: `recon api`, `recon worker`.

# Base images are pinned to releases (bump them deliberately, e.g. for security fixes).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# --- the web page's three.js: the version pinned in its lockfile, from the npm registry ---------
# Only the files the page serves (recon.api.routes.web.VENDOR_FILES) and the licence are kept.
FROM ${NODE_IMAGE} AS web-vendor
WORKDIR /web
COPY recon/api/web/package.json recon/api/web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && cd node_modules/three && mkdir -p /vendor/three \
 && cp --parents LICENSE build/three.module.js build/three.core.js \
    examples/jsm/controls/OrbitControls.js examples/jsm/loaders/GLTFLoader.js \
    examples/jsm/utils/BufferGeometryUtils.js examples/jsm/utils/SkeletonUtils.js /vendor/three/

# --- the project's sources, shared by both targets ---------------------------------------------
FROM ${PYTHON_IMAGE} AS source
WORKDIR /src
COPY pyproject.toml README.md ./
COPY recon ./recon
# `pip install .` ships them as package data of recon.api, beside the page's own files.
COPY --from=web-vendor /vendor/three ./recon/api/web/node_modules/three

# --- API: the `api` extra, no torch -------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY --from=source /src /app
# The import check proves the API runs without torch or the worker (as tests/api/test_app.py does).
RUN pip install '.[api]' \
 && python -c "import sys, recon.api.app, recon.api.cli, recon.cli; assert not {'torch', 'recon.worker'} & set(sys.modules)" \
 && useradd --system --uid 10001 --home-dir /data recon \
 && mkdir -p /data && chown recon /data
USER recon
ENV RECON_HOST=0.0.0.0 RECON_PORT=8000 RECON_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["recon", "api", "--host", "0.0.0.0", "--port", "8000"]

# --- worker: CUDA runtime + the CUDA build of torch ----------------------------------------------
FROM ${CUDA_IMAGE} AS worker
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
# The default torch wheel for Linux x86_64 is a CUDA build. To pin another CUDA flavour, pass
# --build-arg TORCH_INDEX_URL=<a PyTorch wheel index> (and TORCH_SPEC to pin a version).
ARG TORCH_SPEC="torch>=2.3"
ARG TORCH_INDEX_URL=""
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"; \
    else pip install "$TORCH_SPEC"; fi
WORKDIR /app
COPY --from=source /src /app
RUN pip install '.[worker]' \
 && useradd --system --uid 10001 --home-dir /data recon \
 && mkdir -p /data && chown recon /data
USER recon
ENV RECON_WORKER_DEVICE=cuda RECON_WORKER_CONCURRENCY=1 RECON_DATA_DIR=/data
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["recon", "worker", "--healthcheck"]
# One worker process per GPU: give each container one GPU (see docker-compose.yml).
CMD ["recon", "worker", "--device", "cuda", "--concurrency", "1"]

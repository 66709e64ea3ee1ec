# onnx-workbench as a container: the same install as the README (`pip install` of this
# repository, then `onnx-workbench serve`), sessions on the /data volume, running as a non-root user.
#   docker build -t onnx-workbench .
#   docker run -p 8000:8000 -v workbench-data:/data onnx-workbench
# The same image runs the Celery workers of team mode (compose.yaml; README "Team mode"):
#   onnx-workbench worker --job-broker redis://HOST:6379/0 --data-dir /data
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ONNX_WORKBENCH_DATA=/data \
    NUMBA_CACHE_DIR=/home/workbench/.cache/numba

WORKDIR /src
COPY . /src
RUN python -m pip install /src \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin workbench \
    && mkdir -p /data \
    && chown workbench:workbench /data

USER workbench
WORKDIR /home/workbench
# compile the quantization statistics kernel now (numba caches it), not in the first analysis
RUN python -c "import numpy as np; from app.quant.histogram import Histogram; Histogram().add(np.zeros(8, np.float32))"
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Add --workers N for more processes; set ONNX_WORKBENCH_TOKEN to require a bearer token on /api.
CMD ["onnx-workbench", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"]

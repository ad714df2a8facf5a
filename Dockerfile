# CPU image of the fine-tuning studio.
#
#   docker build -t finetuner .
#   docker run -p 7860:7860 -v finetuner-data:/data -e FINETUNER_AUTH=alice:pw1,bob:pw2 finetuner
#
# The studio listens on 0.0.0.0 in the container, an address others can reach, so it refuses to
# start unless people sign in: set FINETUNER_AUTH (user:password pairs, or the path of a file
# with one pair per line, e.g. a mounted secret). To run without sign-in on purpose, where
# everyone who reaches the server shares one workspace (the page shows a banner saying so),
# pass -e FINETUNER_ALLOW_ANONYMOUS=1 instead.
#
# torch==2.13.0 from the default index is the CUDA build (several GB). For a small CPU image,
# point pip at PyTorch's CPU wheel index:  --build-arg PIP_EXTRA_INDEX_URL=<that index URL>.
# For a GPU server, base the image on an NVIDIA CUDA runtime image with Python 3.11 instead of
# python:3.11-slim and keep the default index (it serves the CUDA build).
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    FINETUNER_HOME=/data \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

RUN useradd --create-home --uid 1000 studio && mkdir -p /data && chown studio /data
WORKDIR /app
COPY requirements.txt requirements-trackers.txt requirements-cluster.txt ./
RUN pip install -r requirements.txt
# optional extras: --build-arg EXTRAS="requirements-trackers.txt requirements-cluster.txt"
# (experiment trackers; the Ray backend, also the image for a KubeRay RayCluster's pods)
ARG EXTRAS=""
RUN for f in $EXTRAS; do pip install -r "$f" || exit 1; done
COPY --chown=studio . .

USER studio
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"
# needs FINETUNER_AUTH or FINETUNER_ALLOW_ANONYMOUS=1 at `docker run` (see the top of this file)
CMD ["python", "app.py"]

# digitnet serve in a container: python-slim, a user without privileges, the bundled models.
#   docker build -t digitnet .
#   docker run -p 8000:8000 digitnet            # then open http://localhost:8000
# Replicas are stateless (the models are loaded at start-up): run N of them behind any HTTP
# load balancer. Trained-on-the-page models live in the container unless --models-dir names a
# mounted volume.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 digitnet
WORKDIR /home/digitnet/app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf src

USER digitnet
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"
CMD ["digitnet", "serve", "--host", "0.0.0.0", "--port", "8000"]

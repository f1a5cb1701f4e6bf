"""digitnet.web: the web page and REST API behind ``digitnet serve`` (FastAPI)."""

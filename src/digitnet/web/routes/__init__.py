"""The web app's routes, a router per area: the pages, answering images (predict, read), the
models served, and trainings."""

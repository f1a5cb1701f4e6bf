"""The pages: drawing a digit (/), a model's page (/model), training a network (/learn)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = resources.files("digitnet.web") / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def drawing_page():
    return FileResponse(str(STATIC / "index.html"))


@router.get("/model")
async def model_page():
    return FileResponse(str(STATIC / "model.html"))


@router.get("/learn")
async def learn_page():
    return FileResponse(str(STATIC / "learn.html"))

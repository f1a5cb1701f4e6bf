"""The models served: the list, each one's page data and test-set scorecard, a neuron of it,
its file — and the server's health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException

from digitnet import insight
from digitnet.web import schemas
from digitnet.web.payloads import model_details, model_summary, test_payload
from digitnet.web.server import ServerDep
from digitnet.zoo import model_path

router = APIRouter()


@router.get("/api/health", response_model=schemas.Health)
async def health(server: ServerDep):
    """``workers``: the processes that can answer drawings now; ``pools``: each pool's
    workers ready and in all. 503 while any pool has none ready."""
    return JSONResponse(*server.health())


@router.get("/api/models", response_model=list[schemas.ModelSummary])
async def models(server: ServerDep):
    catalog = server.catalog
    return [model_summary(m, m.name == catalog.default) for m in catalog.models.values()]


@router.get("/api/models/{name}", response_model=schemas.ModelDetails)
async def model(name: str, server: ServerDep):
    return JSONResponse(model_details(server.served(name)))


@router.get("/api/models/{name}/test", response_model=schemas.Scorecard)
async def model_test(name: str, server: ServerDep):
    chosen = server.served(name)
    return JSONResponse(test_payload(chosen, await chosen.results()))


@router.get("/api/models/{name}/layers/{layer}/neurons/{unit}", response_model=schemas.Neuron,
         responses=schemas.ERRORS)  # fmt: skip
async def neuron(name: str, layer: int, unit: int, server: ServerDep):
    """One neuron of a multilayer perceptron's dense layer ``layer`` (0: the first hidden
    layer; the output layer last): its incoming weights, bias and activation — what the
    page shows when a neuron of the network is clicked."""
    chosen = server.served(name)
    try:
        found = insight.neuron(chosen.model, layer, unit)
    except IndexError as err:
        raise HTTPException(404, f"{name}: {err}") from None
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    inputs = "the 28x28 input" if layer == 0 else insight.stages(chosen.model)[layer - 1].name
    return JSONResponse({"layer": found.stage.name, "unit": unit,
                         "activation": found.stage.activation, "inputs": inputs,
                         "weights": found.weights.tolist(), "bias": found.bias})  # fmt: skip


@router.get("/api/models/{name}/file", response_class=FileResponse, responses=schemas.ERRORS)
async def model_file(name: str, server: ServerDep):
    """The model's file: digitnet's .npz, which every digitnet command takes."""
    chosen = server.served(name)
    return FileResponse(str(model_path(chosen.source)), media_type="application/octet-stream",
                        filename=f"{chosen.name}.npz")  # fmt: skip

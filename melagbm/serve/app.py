"""The screening service: a FastAPI app around one saved model, loaded with the safe loader only.

(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime.)

Inference runs in a worker thread (the event loop keeps answering health checks); requests over the size
limit are refused before they are read in full; with a token file every ``/v1`` route needs
``Authorization: Bearer <token>``; CORS is off unless origins are given. No client value ever names a
file: images travel in the request, and the model file is the one the operator started the service with.
"""


import base64
import binascii
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import RequestTooLargeError

__all__ = ["ServiceSettings", "app_from_environment", "create_app"]

_ENVIRONMENT = "MELAGBM_SERVE_"  # app_from_environment reads MELAGBM_SERVE_MODEL, ..._TOKEN_FILE, ...


@dataclass
class ServiceSettings:
    """What the operator sets: the model file and the service's limits.

    Parameters
    ----------
    model : path
        A ``.melagbm`` model file (a two-class model with images).
    token_file : path, default=None
        A file holding the bearer token every ``/v1`` route asks for (None: no authentication).
    max_lesions : int, default=16
        Lesions per request.
    max_request_bytes : int, default=32 MiB
        Size of a request body.
    cors_origins : list of str, default=[]
        Origins allowed to call the service from a browser (none: CORS off).
    store : str or None, default=None
        The embedding store for the clients' images ("auto": the default store; None: kept in memory only).
    """

    model: str | Path
    token_file: str | Path | None = None
    max_lesions: int = 16
    max_request_bytes: int = 32 << 20
    cors_origins: list[str] = field(default_factory=list)
    store: str | None = None


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(self.limit, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise RequestTooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except RequestTooLargeError:
            await _too_large(self.limit, send)


async def _too_large(limit: int, send: Any) -> None:
    import json

    body = json.dumps({"detail": f"request body over the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ServiceSettings) -> Any:
    """The FastAPI app serving ``settings.model``.

    Parameters
    ----------
    settings : ServiceSettings

    Returns
    -------
    app : fastapi.FastAPI
        Routes: ``POST /v1/predict``, ``GET /v1/model``, ``GET /healthz``, ``GET /readyz``, ``GET /openapi.json``.
    """
    import anyio
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError

    from ..exceptions import FieldError
    from ..persistence import load
    from .schemas import LesionFields, LesionJSON, PredictRequest, PredictResponse
    from .screening import Screening

    model = load(settings.model)
    model.set_params(cache=settings.store, verbose=0)
    screening = Screening(model, settings.model)
    token = None if settings.token_file is None else Path(settings.token_file).read_text().strip()
    if token == "":
        raise ValueError(f"{settings.token_file}: the token file is empty")
    state = {"ready": False}

    async def warm_up() -> None:
        import numpy as np

        image = np.full((64, 64, 3), 180, np.uint8)
        image[16:48, 16:48] = 60
        await anyio.to_thread.run_sync(screening.predict, [{"image": image}])
        state["ready"] = True

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):
        await warm_up()
        yield

    app = FastAPI(title="melagbm screening service", version=screening.model_id, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # the interactive docs load scripts from a CDN: none here

    def authorised(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required",
                                headers={"WWW-Authenticate": "Bearer"})

    def unprocessable(location: tuple, message: str) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [{"loc": ["body", *location], "msg": message}]})

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = state["ready"]
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, **screening.version})

    @app.get("/v1/model", dependencies=[Depends(authorised)])
    async def model_card() -> dict:
        card = getattr(model, "model_card_", None)
        return {**screening.version, "card": card}

    @app.post("/v1/predict", response_model=PredictResponse, dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": {"content": {"application/json": {
                  "schema": PredictRequest.model_json_schema()}}}})
    async def predict(request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                lesions = _json_lesions(await request.body(), PredictRequest, LesionJSON)
            elif kind == "multipart/form-data":
                lesions = await _form_lesions(request, LesionFields)
            else:
                raise HTTPException(415, "send application/json (base64 images) or multipart/form-data")
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"detail": [
                {"loc": ["body", *error["loc"]], "msg": error["msg"]} for error in exc.errors()]})
        except FieldError as exc:
            return unprocessable(exc.location, str(exc))
        if len(lesions) > settings.max_lesions:
            return unprocessable(("lesions",), f"at most {settings.max_lesions} lesions per request, "
                                               f"got {len(lesions)}")
        try:
            results = await anyio.to_thread.run_sync(screening.predict, lesions)
        except FieldError as exc:
            return unprocessable(exc.location, str(exc))
        return {"lesions": results}

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])
    app.add_middleware(_BodyLimit, limit=int(settings.max_request_bytes))
    return app


def _json_lesions(body: bytes, request_model: Any, lesion_model: Any) -> list[dict[str, Any]]:
    """The lesions of a JSON request, each image decoded from base64 (FieldError naming a bad one)."""
    from ..exceptions import FieldError

    parsed = request_model.model_validate_json(body)
    lesions = []
    for index, lesion in enumerate(parsed.lesions):
        try:
            image = base64.b64decode(lesion.image, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FieldError(("lesions", index, "image"), f"not base64: {exc}") from exc
        lesions.append({**lesion.model_dump(exclude={"image"}), "image": image})
    return lesions


async def _form_lesions(request: Any, fields_model: Any) -> list[dict[str, Any]]:
    """The lesions of a multipart request: one ``image`` file per lesion, and ``age``/``sex``/``site``/
    ``patient_id`` given once per lesion in the same order (or not at all)."""
    from ..exceptions import FieldError

    form = await request.form()
    images = form.getlist("image")
    if not images:
        raise FieldError(("image",), "no 'image' file in the form")
    columns = {}
    for name in ("age", "sex", "site", "patient_id"):
        values = form.getlist(name)
        if values and len(values) != len(images):
            raise FieldError((name,), f"{len(values)} value(s) for {len(images)} image(s): give one per image")
        columns[name] = values or [None] * len(images)
    lesions = []
    for index, upload in enumerate(images):
        if not hasattr(upload, "read"):
            raise FieldError(("image", index), "must be a file upload")
        values = {name: (columns[name][index] or None) for name in columns}
        fields = fields_model.model_validate(values)
        lesions.append({**fields.model_dump(), "image": await upload.read()})
    return lesions


def app_from_environment() -> Any:
    """The app for ``uvicorn --factory melagbm.serve:app_from_environment``, set by environment variables:
    ``MELAGBM_SERVE_MODEL`` (required), ``..._TOKEN_FILE``, ``..._MAX_LESIONS``, ``..._MAX_REQUEST_BYTES``,
    ``..._CORS_ORIGINS`` (comma-separated) and ``..._STORE``.

    Returns
    -------
    app : fastapi.FastAPI
    """
    environ = {key[len(_ENVIRONMENT):].lower(): value for key, value in os.environ.items()
               if key.startswith(_ENVIRONMENT)}
    if "model" not in environ:
        raise RuntimeError(f"set {_ENVIRONMENT}MODEL to the model file to serve")
    return create_app(ServiceSettings(
        model=environ["model"], token_file=environ.get("token_file") or None,
        max_lesions=int(environ.get("max_lesions", 16)),
        max_request_bytes=int(environ.get("max_request_bytes", 32 << 20)),
        cors_origins=[origin for origin in environ.get("cors_origins", "").split(",") if origin],
        store=environ.get("store") or None,
    ))

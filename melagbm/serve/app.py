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

import numpy as np

from ..exceptions import RequestTooLargeError

__all__ = ["ServiceSettings", "app_from_environment", "create_app"]

#: The clinic page's files (HTML, script, style: no build step, nothing from a CDN).
_PAGE = Path(__file__).parent / "page"
#: The page runs only its own script and shows only its own images and the photos chosen on the device.
_ALL_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                            "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
                 **_ALL_HEADERS}
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
        The embedding store for the clients' images ("auto": the default store; None: nothing kept).
    max_image_pixels : int, default=36,000,000
        Pixels (width x height) of one image, read from its header before anything is decoded.
    max_batch : int, default=32
        Lesions the inference thread runs as one batch (1: no batching).
    pixels_in_flight : int, default=128,000,000
        Decoded pixels held at once by the requests in flight (the others wait their turn).
    bytes_in_flight : int, default=128 MiB
        Request bytes held at once by the requests in flight, counted by their Content-Length before their
        body is read (the others wait their turn). With ``pixels_in_flight`` it bounds the memory.
    """

    model: str | Path
    token_file: str | Path | None = None
    max_lesions: int = 16
    max_request_bytes: int = 32 << 20
    cors_origins: list[str] = field(default_factory=list)
    store: str | None = None
    max_image_pixels: int = 36_000_000
    max_batch: int = 32
    pixels_in_flight: int = 128_000_000
    bytes_in_flight: int = 128 << 20


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


class _SecurityHeaders:
    """ASGI middleware: no sniffing, no framing, no referrer on every answer; the page's content security policy
    on the page and its files (however they are addressed)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        extra = _PAGE_HEADERS if path == "/" or path.startswith("/page/") else _ALL_HEADERS

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((name.lower().encode(), value.encode()) for name, value in extra.items()
                                        if name.lower().encode() not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


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
        Routes: ``GET /`` (the clinic page), ``POST /v1/predict`` (``?format=fhir`` for FHIR R4),
        ``GET /v1/model``, ``GET /healthz``, ``GET /readyz``, ``GET /openapi.json``.
    """
    from contextlib import asynccontextmanager
    from typing import Literal

    import anyio
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import ValidationError

    from ..exceptions import FieldError
    from ..persistence import load
    from .batching import Budget, MicroBatcher
    from .fhir import risk_assessment_bundle
    from .schemas import LesionFields, LesionJSON, PredictRequest, PredictResponse
    from .screening import Screening

    model = load(settings.model)
    model.set_params(cache=settings.store, verbose=0)
    screening = Screening(model, settings.model)
    card = getattr(model, "model_card_", None)
    token = None if settings.token_file is None else Path(settings.token_file).read_text().strip()
    if token == "":
        raise ValueError(f"{settings.token_file}: the token file is empty")
    state: dict[str, Any] = {"ready": False, "batcher": None}

    @asynccontextmanager
    async def lifespan(app: Any):
        batcher = MicroBatcher(screening.predict, max_lesions=settings.max_batch)
        state.update(pixels=Budget(settings.pixels_in_flight), bytes=Budget(settings.bytes_in_flight),
                     batcher=batcher)
        try:
            warm = np.full((64, 64, 3), 180, np.uint8)
            warm[16:48, 16:48] = 60
            await batcher.submit(await anyio.to_thread.run_sync(screening.decode, [{"image": warm}]))
            batcher.reset_stats()  # /readyz counts what clients sent
            state["ready"] = True
            yield
        finally:
            state["ready"] = False
            await anyio.to_thread.run_sync(batcher.close)

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

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(_PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=_PAGE), name="page")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = state["ready"]
        served = state["batcher"].stats() if state["batcher"] is not None else {}
        return JSONResponse(status_code=200 if ready else 503,
                            content={"ready": ready, **screening.version, "served": served})

    @app.get("/v1/model", dependencies=[Depends(authorised)])
    async def model_card() -> dict:
        return {**screening.version, "fields": screening.field_values(), "card": card}

    async def answer(request: Request, kind: str) -> tuple[list[dict], list[dict]]:
        """(the results, the decoded lesions) of one request: parsed, checked and decoded off the event loop,
        its decoded pixels held in the pixel budget while the inference thread answers it."""
        if kind == "application/json":
            lesions = await anyio.to_thread.run_sync(_json_lesions, await request.body(), PredictRequest, LesionJSON)
        else:
            lesions = await _form_lesions(request, LesionFields)
        if len(lesions) > settings.max_lesions:
            raise FieldError(("lesions",), f"at most {settings.max_lesions} lesions per request, got {len(lesions)}")
        pixels = await anyio.to_thread.run_sync(_pixels_of, lesions, settings.max_image_pixels)
        budget: Budget = state["pixels"]
        await budget.acquire(pixels)
        try:
            decoded = await anyio.to_thread.run_sync(screening.decode, lesions)
            return await state["batcher"].submit(decoded), decoded
        finally:
            await budget.release(pixels)

    @app.post("/v1/predict", response_model=PredictResponse, dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": {"content": {"application/json": {
                  "schema": PredictRequest.model_json_schema()}}}})
    async def predict(request: Request, format: Literal["json", "fhir"] = Query(
            "json", description="json: melagbm's answer; fhir: a FHIR R4 Bundle of RiskAssessment")) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("application/json", "multipart/form-data"):
            raise HTTPException(415, "send application/json (base64 images) or multipart/form-data")
        declared = request.headers.get("content-length", "")
        size = min(int(declared), settings.max_request_bytes) if declared.isdigit() else settings.max_request_bytes
        held: Budget = state["bytes"]
        await held.acquire(size)  # before the body is read: waiting requests hold nothing
        try:
            results, decoded = await answer(request, kind)
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"detail": [
                {"loc": ["body", *error["loc"]], "msg": error["msg"]} for error in exc.errors()]})
        except FieldError as exc:
            return unprocessable(exc.location, str(exc))
        finally:
            await held.release(size)
        if format == "fhir":
            return JSONResponse(risk_assessment_bundle(results, decoded, card),
                                media_type="application/fhir+json")
        return {"lesions": results}

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])
    app.add_middleware(_BodyLimit, limit=int(settings.max_request_bytes))
    app.add_middleware(_SecurityHeaders)
    return app


def _pixels_of(lesions: list[dict[str, Any]], limit: int) -> int:
    """The pixels the lesions' images will decode to, from their headers (FieldError naming one over ``limit``)."""
    from .screening import image_pixels

    return sum(image_pixels(lesion["image"], ("lesions", index, "image"), limit)
               for index, lesion in enumerate(lesions))


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
    ``patient_id`` given once per lesion in the same order (or not at all); any other field is refused."""
    from pydantic import ValidationError

    from ..exceptions import FieldError

    form = await request.form()
    names = ("age", "sex", "site", "patient_id")
    unknown = sorted(set(form.keys()) - {"image", *names})
    if unknown:
        raise FieldError((unknown[0],), f"unknown field {unknown[0]!r}: the form takes image, {', '.join(names)}")
    images = form.getlist("image")
    if not images:
        raise FieldError(("image",), "no 'image' file in the form")
    columns = {}
    for name in names:
        values = form.getlist(name)
        if values and len(values) != len(images):
            raise FieldError((name,), f"{len(values)} value(s) for {len(images)} image(s): give one per image")
        columns[name] = values or [None] * len(images)
    lesions = []
    for index, upload in enumerate(images):
        if not hasattr(upload, "read"):
            raise FieldError(("lesions", index, "image"), "must be a file upload")
        try:
            fields = fields_model.model_validate({name: columns[name][index] for name in columns})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise FieldError(("lesions", index, *error["loc"]), error["msg"]) from exc
        lesions.append({**fields.model_dump(), "image": await upload.read()})
    return lesions


def app_from_environment() -> Any:
    """The app for ``uvicorn --factory melagbm.serve:app_from_environment``, set by environment variables named
    after :class:`ServiceSettings`' fields: ``MELAGBM_SERVE_MODEL`` (required), ``..._TOKEN_FILE``,
    ``..._MAX_LESIONS``, ``..._MAX_REQUEST_BYTES``, ``..._CORS_ORIGINS`` (comma-separated), ``..._STORE``,
    ``..._MAX_IMAGE_PIXELS``, ``..._MAX_BATCH``, ``..._PIXELS_IN_FLIGHT`` and ``..._BYTES_IN_FLIGHT``.

    Returns
    -------
    app : fastapi.FastAPI
    """
    from dataclasses import fields

    environ = {key[len(_ENVIRONMENT):].lower(): value for key, value in os.environ.items()
               if key.startswith(_ENVIRONMENT)}
    if "model" not in environ:
        raise RuntimeError(f"set {_ENVIRONMENT}MODEL to the model file to serve")
    known = {setting.name: setting for setting in fields(ServiceSettings)}
    unknown = sorted(set(environ) - set(known))
    if unknown:
        raise RuntimeError(f"unknown setting(s) {[_ENVIRONMENT + name.upper() for name in unknown]}; "
                           f"known: {[_ENVIRONMENT + name.upper() for name in known]}")
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if name == "cors_origins":
            values[name] = [origin for origin in text.split(",") if origin]
        elif isinstance(known[name].default, int):
            try:
                values[name] = int(text)
            except ValueError:
                raise RuntimeError(f"{_ENVIRONMENT}{name.upper()} must be a whole number, got {text!r}") from None
        else:
            values[name] = text or None
    return create_app(ServiceSettings(**values))

"""The screening service: ``melagbm serve MODEL`` (FastAPI + uvicorn) around one saved model."""

from .app import ServiceSettings, app_from_environment, create_app

__all__ = ["ServiceSettings", "app_from_environment", "create_app"]

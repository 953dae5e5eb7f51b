"""Where Alembic and ``create_all`` learn about every ORM module."""

from __future__ import annotations

import importlib

# Each domain's ORM module; add yours here.
MODEL_MODULES = (
    "gateway.calls.orm",
    "cti.orm",
    "gateway.quality.orm",
    "gateway.ivr.orm",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not (name == exc.name or name.startswith(exc.name + ".")):
                raise  # a real import error inside an existing module

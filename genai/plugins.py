"""Your own code in a config: a ``module:Class`` path, imported from the working directory or the
Python path, checked before anything starts.

``model.class_path`` names a model family of your own (:func:`family_class`). Ray workers on the
machine that runs the command import it too: Ray puts the driver's working directory on their
path. On a cluster of several machines, install the module on every node (the image) or ship it
with the job (``ray job submit --working-dir``).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load(path: str, field: str) -> Any:
    """The object ``module:name`` names; a ``ValueError`` naming ``field`` when it cannot be."""
    if not PATH.match(path):
        raise ValueError(f"{field}: {path!r} is not a 'module:Class' path (e.g. 'my_models:Tiny')")
    module_name, name = path.split(":")
    here = os.getcwd()
    if here not in sys.path:  # as `python -m` and uvicorn do: your module beside you imports
        sys.path.append(here)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise ValueError(
            f"{field}: cannot import {module_name!r} from the working directory ({here}) or the"
            f" Python path: {type(err).__name__}: {err}"
        ) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"{field}: module {module_name!r} has no {name!r}") from None


def family_class(path: str) -> type:
    """The model family class ``path`` names: a subclass of :class:`genai.models.GenerativeModel`
    built as ``cls(model_config, losses, data_spec, features=None)``."""
    # the one import back up the layers (tests/test_layering.py): models import the configs
    from genai.models.base import GenerativeModel

    cls = load(path, "model.class_path")
    if not (isinstance(cls, type) and issubclass(cls, GenerativeModel)):
        raise ValueError(
            f"model.class_path: {path!r} is not a subclass of genai.models.GenerativeModel"
        )
    return cls

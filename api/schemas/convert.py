"""Response models filled from the engine's dataclasses (metrics/), so a field shared by both
is named once, in the model."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def from_dataclass(model: type[M], obj: Any, *more: Any, **converted: Any) -> M:
    """`model` from the same-named fields of the dataclass `obj` (and of `more`, later ones
    winning: a readout row over its comparison); `converted` gives the fields whose JSON form
    differs (dates as ISO strings, enums as their values) or that no object has. The JSON
    keeps the model's field order."""
    values: dict[str, Any] = {}
    for source in (obj, *more):
        values.update(
            {f.name: getattr(source, f.name) for f in dataclasses.fields(source) if f.name in model.model_fields}
        )
    return model(**{**values, **converted})

"""SQL functions that are spelled differently by each database we run on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class json_length(GenericFunction[int]):  # noqa: N801 - named like the SQL function
    """The number of elements of a JSON array (NULL for NULL)."""

    type = Integer()
    inherit_cache = True


@compiles(json_length)
def _json_length(element: Any, compiler: Any, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)})"


@compiles(json_length, "mysql", "mariadb")
def _json_length_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"JSON_LENGTH({compiler.process(element.clauses, **kw)})"

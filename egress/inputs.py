"""Reading user files at the boundary: UTF-8 text, YAML without duplicate keys, bounded JSON.

Every reader raises the caller's InputError subclass with one sentence naming the file and
the fix, so no decoding, parsing or recursion error reaches the user as a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from egress.errors import InputError, UsageError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
GUID_PATTERN = _GUID.pattern


def decode_utf8(data: bytes, *, origin: str, error: type[InputError]) -> str:
    """Bytes as UTF-8 text; the error names the line and byte that are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{origin}: is not UTF-8 text (byte {exc.start} on line {line}); save the file "
            "as UTF-8."
        ) from None


def read_text(
    path: Path, *, what: str, error: type[InputError], fix: str = "check the path"
) -> str:
    """A whole UTF-8 text file; `what` says which file it is ("policy file", "probe plan")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); {fix}.") from None
    return decode_utf8(data, origin=str(path), error=error)


def _unique_key_loader() -> type[yaml.SafeLoader]:
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[valid-type,misc]
        """The safe loader, refusing a mapping that repeats a key (the last would win)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges defaults that explicit keys may override
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base constructor reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key '{key}' (first at line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


_LOADER = _unique_key_loader()


def load_yaml(text: str, *, origin: str, error: type[InputError]) -> Any:
    """Parse YAML safely; duplicate keys, syntax errors and deep nesting name file and line."""
    try:
        return yaml.load(text, Loader=_LOADER)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        if problem and str(problem).startswith("duplicate key"):
            raise error(f"{origin}: {problem}{where}; keep only one of them.") from None
        raise error(f"{origin}: not valid YAML{where}; fix the syntax there.") from None
    except RecursionError:
        raise error(f"{origin}: is nested too deeply to be a YAML file egress reads.") from None


def load_json(text: str | bytes, *, origin: str, error: type[InputError]) -> Any:
    """Parse JSON; invalid syntax and nesting too deep for Python both name the file."""
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{origin}: JSON nested too deeply; flatten the document.") from None
    except ValueError as exc:
        raise error(f"{origin}: not valid JSON ({exc}); fix or regenerate the file.") from None


def check_guid(value: str, *, flag: str) -> str:
    """A subscription (or tenant) id must be a GUID; the error names the flag."""
    if not _GUID.match(value.strip()):
        raise UsageError(
            f"{flag} '{value}' is not a subscription id (a GUID such as "
            "00000000-0000-0000-0000-000000000000); see `az account list -o table`."
        )
    return value.strip()

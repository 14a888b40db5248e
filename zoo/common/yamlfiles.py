"""Reading YAML files strictly: plain values only, duplicate keys refused, errors as one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from zoo.common.errors import ConfigError


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses duplicate keys (a silent override is almost always a typo)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> Any:
    """The parsed file, with only plain YAML values: tags that would build objects are errors."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the file ({error.__class__.__name__})", source=str(path)) from None
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.constructor.ConstructorError as error:
        where = f"line {error.problem_mark.line + 1}" if error.problem_mark else "YAML"
        problem = error.problem or ""
        if "constructor for the tag" in problem:
            problem = f"YAML tag {problem.split('tag')[-1].strip()} is not allowed (configs hold plain values only)"
        raise ConfigError(problem, source=str(path), key=where) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(f"invalid YAML: {getattr(error, 'problem', error)}", source=str(path), key=where) from None

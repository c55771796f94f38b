"""stack.yml with the CI override applied, printed for `docker stack deploy -c -`.

Docker's own merge of two compose files joins lists (ports by published number), so an
override can neither drop the ingress ports nor remove a service. This merge is plainer:
mappings merge key by key, anything else in the override replaces what stack.yml has,
and null removes the key. Anchors and `<<` merge keys are resolved on load; `${...}`
variables are left for `docker stack deploy` to interpolate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def merge(base: Any, override: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(base.get(key), value)
    return merged


def render(stack: Path, override: Path) -> dict[str, Any]:
    rendered = merge(yaml.safe_load(stack.read_text()), yaml.safe_load(override.read_text()))
    return {key: value for key, value in rendered.items() if not key.startswith("x-")}


def main(argv: list[str]) -> None:
    stack, override = map(Path, argv)
    yaml.safe_dump(render(stack, override), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The configs that ship inside the package (zoo/configs/), and how a reference names one.

A reference with no '/' and no .yaml/.yml suffix is a shipped config's name (`resnet20`,
`default`, `recipe`) and resolves the same from any directory, in a checkout or an installed
package, unless a file of that name is in the current directory; anything else is a path, relative
to the current directory or to the file that names it.
The checkout's `configs/` is a link to this folder, so `configs/experiments/default.yaml` keeps working.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from zoo.common.errors import ConfigError, unknown

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
Kind = Literal["model", "experiment"]
FOLDERS: dict[str, tuple[str, ...]] = {"model": ("models",), "experiment": ("experiments", "ablations")}


def is_name(reference: str) -> bool:
    """Whether `reference` names a shipped config rather than giving a path (a file of that name given in the
    current directory is the user's, and wins)."""
    return ("/" not in reference and "\\" not in reference and not reference.endswith((".yaml", ".yml"))
            and not Path(reference).is_file())


def shipped_configs(kind: Kind) -> list[Path]:
    """Every shipped config of `kind`, sorted by name (an experiment's kind includes the ablations)."""
    return sorted((path for folder in FOLDERS[kind] for path in (CONFIGS_DIR / folder).glob("*.yaml")),
                  key=lambda path: path.stem)


def config_path(reference: str | Path, kind: Kind, relative_to: Path | None = None) -> Path:
    """The file `reference` names: a shipped config of `kind` by name, else a path (from `relative_to`)."""
    text = str(reference)
    if is_name(text):
        for folder in FOLDERS[kind]:
            if (path := CONFIGS_DIR / folder / f"{text}.yaml").is_file():
                return path
        raise ConfigError(unknown(kind, text, [path.stem for path in shipped_configs(kind)]))
    path = Path(text).expanduser()
    return path if path.is_absolute() or relative_to is None else relative_to / path

"""Parity of every config with a torchvision twin: torchvision's model with random weights, its state_dict
converted into the zoo's config, both run on the same images.

    python benchmarks/torchvision_parity.py [--json PATH]

Prints the largest logit difference over the largest logit (1e-4 is the bound tests/test_torchvision_weights.py
holds it to) and the seconds each took. Needs torch and torchvision (the bench extra).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from zoo.common.errors import ZooError, exits_cleanly  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

BOUND = 1e-4


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    import_tensorflow_quietly()
    import reference_torchvision

    from zoo.models.torchvision_weights import twin_configs

    try:
        reference_torchvision.models()
    except ImportError as error:
        raise ZooError(f"torchvision_parity needs torch and torchvision ({error}): pip install -e '.[bench]'") from None
    rows = []
    print("| config | max logit difference / max logit | seconds |\n|---|---:|---:|")
    for name in twin_configs():
        with tempfile.TemporaryDirectory(prefix="zoo-parity-") as folder:
            difference, seconds = reference_torchvision.parity(name, Path(folder))
        rows.append({"config": name, "relative_difference": difference, "seconds": round(seconds, 2)})
        print(f"| {name} | {difference:.1e} | {seconds:.1f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    over = [row["config"] for row in rows if row["relative_difference"] > BOUND]
    if over:
        print(f"over the {BOUND:g} bound: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

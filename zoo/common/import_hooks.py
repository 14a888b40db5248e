"""Running code once a module has been imported, without importing it: `when_imported("keras", f)`.

`import zoo` must not import Keras (TensorFlow's import takes 3 s, and the command line answers
a typo in a fraction of a second), yet once a user imports Keras, `keras.saving.load_model` must
find the zoo's custom objects. A finder at the front of sys.meta_path waits for that module's
import, lets the usual finders locate it, and calls back right after the module has run.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Callable


class _CallAfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once is enough, and the usual finders must not meet this one again
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def run_then_call_back(module) -> None:
            run_module(module)
            self.callback()

        spec.loader.exec_module = run_then_call_back  # this spec's own loader instance
        return spec


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Calls `callback()` once top-level module `name` has been imported: now if it already has been."""
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _CallAfterImport(name, callback))

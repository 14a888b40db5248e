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
    # It stays in sys.meta_path until the module has run: a look-up alone does not import it, and
    # TensorFlow's own import looks Keras up (importlib.util.find_spec) long before anyone imports it.
    def __init__(self, name: str, callback: Callable[[], None]):
        self.name, self.callback, self.looking = name, callback, False

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name or self.looking:
            return None
        self.looking = True  # the usual finders, asked below, must not meet this one again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.looking = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def run_then_call_back(module) -> None:
            run_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            self.callback()

        spec.loader.exec_module = run_then_call_back  # this spec's own loader instance
        return spec


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Calls `callback()` once top-level module `name` has been imported: now if it already has been."""
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _CallAfterImport(name, callback))

"""Modules a library imports at start-up but citebot never calls, loaded on first use instead.

sentence-transformers imports scikit-learn at import time (``sentence_transformers.util.similarity``
does ``from sklearn.metrics import pairwise_distances`` for an evaluator helper); scikit-learn brings
SciPy's statistics with it. Encoding never calls it, yet it costs every process that loads the
model about 1.4 s of CPU and 39 MiB of memory (a fifth of the import time): each bot replica, each
``citebot`` command, each test child process.

:func:`defer_module` puts a stand-in into ``sys.modules``: ``from sklearn.metrics import
pairwise_distances`` then binds a forwarder, and the real module is imported the first time
anything is called or looked up on it. Behaviour is unchanged for code that does use it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

# what the model's import pulls in but encoding never calls: module → the names imported from it
UNUSED_AT_IMPORT: dict[str, tuple[str, ...]] = {"sklearn.metrics": ("pairwise_distances",)}


class DeferredModule(types.ModuleType):
    """Stands in for a module until something is looked up on it that it does not forward."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (copy, pickle, inspect) must not load the module
            raise AttributeError(name)
        return getattr(real_module(self.__name__), name)


def real_module(name: str) -> types.ModuleType:
    """The real module ``name``, imported now if only its stand-in was there."""
    if isinstance(sys.modules.get(name), DeferredModule):
        del sys.modules[name]
    return importlib.import_module(name)


def _forwarder(module: str, name: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(real_module(module), name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"{module}.{name}, imported on the first call."
    return forward


def defer_module(name: str, names: Iterable[str]) -> bool:
    """Put a stand-in for module ``name`` into ``sys.modules``, forwarding ``names`` to the real
    module on first call. False (nothing changed) when the module is already imported."""
    if name in sys.modules:
        return False
    stand_in = DeferredModule(name, f"stand-in for {name}, imported on first use (embeddings.deferred_imports)")
    stand_in.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec(name) still says it exists
    for attribute in names:
        setattr(stand_in, attribute, _forwarder(name, attribute))
    sys.modules[name] = stand_in
    return True


def defer_unused_imports() -> None:
    """Before the model's library is imported: defer what it imports but never calls here."""
    for name, names in UNUSED_AT_IMPORT.items():
        defer_module(name, names)

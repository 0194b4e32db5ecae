"""`perpd/nursery/` holds services only: each module is one service with trio's
``Nursery.start`` shape (STYLE), and what a service keeps lives next to what it models."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import perpd.nursery


def test_every_nursery_module_is_one_service() -> None:
    names = [m.name for m in pkgutil.iter_modules(perpd.nursery.__path__)]
    assert len(names) >= 10
    for name in names:
        module = importlib.import_module(f"perpd.nursery.{name}")
        run = getattr(module, "run", None)
        assert inspect.iscoroutinefunction(run), f"perpd.nursery.{name} has no async run"
        task_status = inspect.signature(run).parameters.get("task_status")
        assert task_status is not None, name
        assert task_status.kind is inspect.Parameter.KEYWORD_ONLY, name

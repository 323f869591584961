"""Registry of reconstruction methods, keyed by kebab-case name. Adding a method is one new file."""

from recon.engine.methods.base import Method, StepLoss, TrainingData
from recon.engine.methods.igr import Igr
from recon.engine.methods.nap import Nap
from recon.engine.methods.neural_pull import NeuralPull

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Nap, NeuralPull, Igr)}


def method_names() -> list[str]:
    """Registered method names, default first."""
    return list(METHODS)


def get_method(name: str) -> type[Method]:
    """The method class registered under `name`.

    Raises
    ------
    ValueError
        With the list of valid names.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; valid methods: {', '.join(METHODS)}"
        ) from None


__all__ = ["METHODS", "Method", "StepLoss", "TrainingData", "get_method", "method_names"]

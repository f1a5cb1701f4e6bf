"""Exceptions the engine raises for problems a user can fix."""


class NNError(ValueError):
    """A user-facing error of the engine: bad configuration, bad shapes, bad files."""


class ModelFileError(NNError):
    """A model file that cannot be read: truncated, not a model, or from a newer format."""


class TrainingDiverged(NNError):
    """The loss stopped being a finite number during training."""


def lookup(table: dict, name: str, kind: str):
    """Return ``table[name]`` or raise an error that lists the valid names."""
    key = name.lower() if isinstance(name, str) else name
    if key not in table:
        valid = ", ".join(sorted(table))
        plural = kind + ("es" if kind.endswith("s") else "s")
        raise NNError(f"unknown {kind} {name!r}; valid {plural}: {valid}")
    return table[key]

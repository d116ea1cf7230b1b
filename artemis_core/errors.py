"""Exceptions with one-line messages that name the bad value and what is allowed."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name when the message is empty), to
    quote a library's multi-line error inside a one-line :class:`ArtemisError`."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ArtemisError(Exception):
    """Base class: the CLI prints these as one-line errors, never as tracebacks."""


class PluginError(ArtemisError):
    """A plugin is unknown, broken, or registers a name that is already taken."""


class SpecError(ArtemisError):
    """A layer, model or mask the planner cannot handle."""


class ParamsError(ArtemisError):
    """Insecure or inconsistent HE parameters."""


class BackendError(ArtemisError):
    """An HE backend refused an operation (missing key, level or scale mismatch...)."""


class BudgetError(ArtemisError):
    """A pruning target that a strategy cannot reach."""


class CalibrationError(ArtemisError):
    """A latency calibration file that is missing, corrupt or inconsistent."""

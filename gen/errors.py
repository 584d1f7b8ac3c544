"""User-facing errors.

Every mistake a user can make (a malformed spec, a layer the hardware cannot run, a tensor of the wrong
shape, a missing simulator) raises :class:`AccelgenError` with a one-line message that names the problem
and the fix. The CLI prints it without a traceback; programming errors keep their tracebacks.
"""


class AccelgenError(Exception):
    """A user error: the message is one line that says what is wrong and how to fix it."""

"""Keeping tracking credentials out of everything edgeproof writes or says (no MLflow import here).

A tracking URI may carry ``user:password@``; MLflow also reads ``MLFLOW_TRACKING_TOKEN`` and
``MLFLOW_TRACKING_PASSWORD`` from the environment. Every URI or
error text that edgeproof logs, returns, raises or stores (outbox, tags, reports) goes through
:func:`redact` first.
"""

from __future__ import annotations

import logging
import os
import re

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>]+)")
SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")  # a user name is not a secret
MASK = "***"


def _secrets() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_ENV]
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)  # longest first


def userinfo_end(rest: str) -> int:
    """Where the user info of a URL ends in ``rest`` (the URL after ``scheme://``): the index of its
    ``@``, or -1 when it has none.

    As MLflow (``requests``/``urllib``) reads a URL: the authority runs up to the first ``/``, ``?``
    or ``#``, and the user info up to its *last* ``@`` (a password may contain ``@``). A password
    or user name with an unencoded ``/`` cuts the authority short (MLflow then sends only part of
    it, or nothing), yet the text still holds all of it: so a ``:`` before a later ``@`` anywhere in
    the URL also counts as ``user:password@`` up to that last ``@`` (masking too much, e.g. the
    host of ``http://host:5000/a@b``, rather than too little).
    """
    cut = re.search(r"[/?#]", rest)
    authority = rest[: cut.start()] if cut else rest
    last = rest.rfind("@")
    if last >= 0 and ":" in rest[:last]:
        return last
    return authority.rfind("@")


def _mask(match: re.Match[str], mask: str) -> str:
    rest = match.group("rest")
    end = userinfo_end(rest)
    return match.group(0) if end < 0 else f"{match.group('scheme')}{mask}{rest[end + 1 :]}"


def redact(text: object) -> str:
    """``text`` with URL user info (``scheme://user:pass@``, exactly the part MLflow sends as
    credentials: see :func:`userinfo_end`) and the values of the secret environment variables
    replaced by ``***``."""
    out = _URL.sub(lambda m: _mask(m, f"{MASK}@"), str(text))
    for secret in _secrets():
        out = out.replace(secret, MASK)
    return out


def without_userinfo(uri: str) -> str:
    """``uri`` with any ``user:password@`` removed (a link that is safe to print)."""
    return _URL.sub(lambda m: _mask(m, ""), uri)


def describe(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"`` with credentials removed."""
    return redact(f"{type(exc).__name__}: {exc}")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's formatted message (MLflow's own and ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, text
        return True


def install_log_filter() -> None:
    """Redact credentials in every handler of the root logger and of MLflow's own logger, which
    does not propagate to the root (idempotent)."""
    for name in ("", "mlflow"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())

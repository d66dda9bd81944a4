"""Structured JSON logs: one line per event, a request id on every line.

Django's and the libraries' stdlib log records go through the same structlog
processors, so an operator's log pipeline sees a single format.
"""

from __future__ import annotations

import logging
import logging.config
import sys

import structlog

_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class HidePaths(logging.Filter):
    """Django's request and security logs name ``request.path``, which may carry a
    token (invitation links); the route pattern takes its place."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if path and isinstance(record.args, tuple):
            match = getattr(request, "resolver_match", None)
            route = "/" + match.route if match else "(unmatched path)"
            escaped = path.encode("unicode_escape").decode("ascii")  # how Django passes it
            record.args = tuple(route if arg in (path, escaped) else arg for arg in record.args)
        return True


def configure_logging(level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,  # type: ignore[list-item]  # typing debt
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(),
                    ],
                    "foreign_pre_chain": [*_SHARED_PROCESSORS, structlog.processors.format_exc_info],
                }
            },
            "filters": {"hide_paths": {"()": HidePaths}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "stream": sys.stderr,
                    "formatter": "json",
                    "filters": ["hide_paths"],
                }
            },
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                # Django logs every 4xx with the full path; our request log already
                # records the route, without tokens that may sit in the path.
                "django.request": {"level": "ERROR"},
                "django.security.DisallowedHost": {"level": "WARNING"},
                # At DEBUG, Django logs every missing template variable with the whole
                # context: email addresses, confirmation keys and links.
                "django.template": {"level": "INFO"},
                # WeasyPrint logs each step of every PDF at info, and at warning each
                # glyph its fonts lack (quoting the text: names people typed) and each
                # font HarfBuzz or fontTools could not subset; the PDF is made all the
                # same. A render that fails raises, and the report code logs that.
                "weasyprint": {"level": "ERROR"},
                "weasyprint.progress": {"level": "ERROR"},
                "fontTools": {"level": "ERROR"},
                # pypdf warns about every flaw it works around in an uploaded PDF; the
                # upload check logs its own line when a file is refused.
                "pypdf": {"level": "ERROR"},
            },
        }
    )

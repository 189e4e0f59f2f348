"""Request context for logs: the request id of the request being served, added to every log line."""
import contextvars
import logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # django.request records carry the request itself; others rely on the context variable.
        if getattr(record, "request_id", None):
            return True
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True

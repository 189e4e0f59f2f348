"""Process-level tuning of the server processes that run the ASGI application (Daphne), applied once at start."""
import gc


def daphne_form_parsing_off() -> None:
    """Stop Twisted from parsing every POST body as a possible HTML form.

    Daphne hands the raw body to the application and never reads ``Request.args``, but Twisted's
    ``Request.requestReceived`` still runs each POST's Content-Type through the ``email`` package
    first (about 47 µs a request, the largest single cost of a fast-path reservation). Django parses
    the forms it receives itself. The property wins over the instance attribute that
    ``Request.__init__`` sets, so every request Daphne builds skips that step.
    """
    from daphne.http_protocol import WebRequest

    WebRequest._parsePOSTFormSubmission = property(lambda self: False, lambda self, value: None)


def heap_freeze() -> None:
    """Move everything loaded so far (Django, the app, its imports) out of the cyclic collector's reach.

    Those objects live as long as the process. Left in the collected generations, every full
    collection walks them all: pauses of tens of milliseconds at a time under load, which were most
    of the reservation latency tail. Call once, after the application is built.
    """
    gc.collect()
    gc.freeze()

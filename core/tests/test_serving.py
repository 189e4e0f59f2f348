"""Process tuning of the Daphne servers: Twisted's form parsing is off for Daphne's requests, the heap is frozen."""
import gc

from twisted.web import http

from core.serving import daphne_form_parsing_off, heap_freeze


def test_daphne_requests_skip_twisteds_form_parsing_whatever_request_init_sets():
    from daphne.http_protocol import WebRequest

    daphne_form_parsing_off()
    request = WebRequest.__new__(WebRequest)

    request._parsePOSTFormSubmission = True  # what twisted.web.http.Request.__init__ does

    assert request._parsePOSTFormSubmission is False
    # Twisted's own requests keep parsing forms: only Daphne's class changed.
    plain = http.Request.__new__(http.Request)
    plain._parsePOSTFormSubmission = True
    assert plain._parsePOSTFormSubmission is True


def test_heap_freeze_moves_what_is_loaded_out_of_the_collected_generations():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        heap_freeze()

        assert gc.get_freeze_count() > 10_000  # Django and the app, at least
    finally:
        gc.unfreeze()

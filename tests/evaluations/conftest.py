import pytest

from tickets.demo.seed import demo_seed


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """The demo knowledge base (categories, templates, history), its new tickets triaged."""
    with django_capture_on_commit_callbacks(execute=True):
        demo_seed()

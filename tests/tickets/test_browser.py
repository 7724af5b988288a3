"""What Triage admins curate, in a real browser (see tests/agent/test_browser.py)."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.conftest import sign_in
from tests.factories import CategoryFactory, UserFactory
from tickets.models import Category
from tickets.roles import TRIAGE_ADMINS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_triage_admin_edits_keywords_as_a_comma_separated_list(
    page: Page, live_server: LiveServer
) -> None:
    UserFactory(username="tara", is_staff=True).groups.add(Group.objects.get(name=TRIAGE_ADMINS))
    category = CategoryFactory(slug="billing", name="Billing", keywords=["refund", "invoice"])
    sign_in(page, live_server, "tara")
    page.goto(f"{live_server.url}/admin/tickets/category/{category.pk}/change/")
    keywords = page.get_by_label("Keywords")

    expect(keywords).to_have_value("refund, invoice")
    keywords.fill('["refund", "invoice", "charged twice"]')
    page.click("input[name=_save]")
    expect(page.locator(".field-keywords .errorlist")).to_have_text(
        "Separate the keywords with commas, without brackets or double quotes, e.g. "
        "refund, charged twice, invoice."
    )
    assert Category.objects.get(pk=category.pk).keywords == ["refund", "invoice"]

    page.get_by_label("Keywords").fill("refund, invoice, charged twice")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Category.objects.get(pk=category.pk).keywords == ["refund", "invoice", "charged twice"]

"""Where staff land: the review queue, for everyone who may see proposals."""

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from agent.admin.review import review_queue_url
from agent.permissions import user_can_see_proposals


def home(request: HttpRequest) -> HttpResponse:
    """The review queue; staff who may not see proposals get the admin index instead (the
    queue would refuse them). Anonymous visitors are sent to log in by the queue itself."""
    if request.user.is_authenticated and not user_can_see_proposals(request.user):
        return HttpResponseRedirect(reverse("admin:index"))
    return HttpResponseRedirect(review_queue_url())


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login, landing on ``home`` rather than the admin index unless the
    request names where to go (``?next=``)."""
    chosen = REDIRECT_FIELD_NAME in request.GET or REDIRECT_FIELD_NAME in request.POST
    extra_context = {} if chosen else {REDIRECT_FIELD_NAME: reverse("home")}
    return admin.site.login(request, extra_context=extra_context)

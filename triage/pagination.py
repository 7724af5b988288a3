"""The API's pagination: DRF's page numbers, with an empty ``?page=`` refused like any other
page that is not a number (404), rather than read as the first page."""

from typing import Any

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class StrictPageNumberPagination(PageNumberPagination):
    def get_page_number(self, request: Request, paginator: Paginator) -> Any:
        page_number = request.query_params.get(self.page_query_param, 1)
        if page_number in self.last_page_strings:
            return paginator.num_pages
        return page_number

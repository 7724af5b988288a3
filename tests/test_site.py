"""What any browser asks the site for, outside the admin and the API."""

from django.test import Client


def test_the_favicon_is_served_from_the_site_root(client: Client) -> None:
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 0 < len(body) < 4096

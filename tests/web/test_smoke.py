import pytest


@pytest.mark.django_db
def test_home_page_renders_over_https(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Create a company account" in response.content


@pytest.mark.django_db
def test_dashboard_shows_the_current_company(client, owner):
    client.force_login(owner.user)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert b"Acme Hiring" in response.content

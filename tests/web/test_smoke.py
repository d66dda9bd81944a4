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


@pytest.mark.django_db
def test_signed_in_pages_are_never_cached(client, owner):
    client.force_login(owner.user)
    response = client.get("/dashboard/")
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/password/reset/"])
def test_account_entrance_pages_sit_in_the_card(client, path):
    html = client.get(path).content.decode()
    card = html.index('<div class="card narrow">')
    assert card < html.index("<form") < html.index("</main>")


@pytest.mark.django_db
def test_account_pages_have_the_account_menu(client, owner):
    client.force_login(owner.user)
    html = client.get("/accounts/password/change/").content.decode()
    assert 'aria-label="Account"' in html
    assert html.index('<div class="card">') < html.index('name="oldpassword"')

"""Intrusion detection attacked the way a scanner would: probing paths, injecting into
parameters, naming itself, guessing links, forging forms; and the people it must never
lock out (a signed-in member on the scanner's network, a referee with a real link)."""

from __future__ import annotations

import pytest

from tests.audit.helpers import events
from tests.conftest import add_member, make_company
from vouch.accounts.models import Role
from vouch.audit.models import EventAction
from vouch.shield import state

pytestmark = pytest.mark.django_db

SCANNER = "198.51.100.23"
NEIGHBOUR = "198.51.100.77"  # the scanner's /24
ELSEWHERE = "203.0.113.9"
PROBES = ["/wp-admin/", "/.env", "/.git/config", "/phpmyadmin/", "/xmlrpc.php", "/server-status", "/cgi-bin/x"]


def _blocked(response) -> bool:
    return response.status_code == 403 and response.get("X-Vouch-Blocked") == "1"


def _probe_until_blocked(client, address=SCANNER, limit=20) -> int:
    for n in range(1, limit + 1):
        if _blocked(client.get(PROBES[n % len(PROBES)], REMOTE_ADDR=address)):
            return n
    raise AssertionError("never blocked")


def test_a_path_scanner_is_blocked_with_a_uniform_403_before_any_view(client, clock):
    # scanner_path (4) a request (its 404 is not counted again): the fourth is refused.
    assert _probe_until_blocked(client) == 4
    response = client.get("/accounts/login/", REMOTE_ADDR=SCANNER)
    assert _blocked(response)
    assert int(response["Retry-After"]) == 60
    assert b"blocked" in response.content and b"<html" not in response.content
    (event,) = events(EventAction.INTRUSION_BLOCKED)
    assert event.target == f"address:{SCANNER}" and event.details["level"] == 1
    assert event.details["point"] in ("scanner_path", "not_found")
    # Another network is untouched.
    assert client.get("/accounts/login/", REMOTE_ADDR=ELSEWHERE).status_code == 200


def test_blocks_escalate_while_the_source_keeps_on(client, clock):
    _probe_until_blocked(client)
    durations = [int(client.get("/", REMOTE_ADDR=SCANNER)["Retry-After"])]
    for _ in range(3):
        clock[0] += durations[-1] + 1
        state.table.forget()
        assert client.get("/accounts/login/", REMOTE_ADDR=SCANNER).status_code == 200  # it ended
        _probe_until_blocked(client)
        durations.append(int(client.get("/", REMOTE_ADDR=SCANNER)["Retry-After"]))
    assert durations == [60, 600, 3600, 86400]


@pytest.mark.parametrize(
    "path",
    [
        "/requests/?q=x' OR '1'='1",
        "/requests/?q=1 UNION ALL SELECT password FROM accounts_user--",
        "/requests/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        "/requests/?next=..%2F..%2F..%2Fetc%2Fpasswd",
        "/requests/?q=1;sleep(5)",
        "/requests/?q=${jndi:ldap://x}",
        "/requests/?q={{7*7}}",
    ],
)
def test_injection_and_traversal_in_parameters_are_detected(client, clock, path):
    for _ in range(3):
        client.get(path, REMOTE_ADDR=SCANNER)
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR=SCANNER))
    points = {e.details["point"] for e in events(EventAction.INTRUSION_DETECTED)}
    assert points & {"injection", "traversal"}


def test_a_scanner_naming_itself_is_blocked_after_its_first_request(client, clock):
    client.get("/", REMOTE_ADDR=SCANNER, HTTP_USER_AGENT="sqlmap/1.8.2#stable (https://sqlmap.org)")
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR=SCANNER))


def test_the_honeytoken_in_robots_txt_blocks_whoever_follows_it(client, clock):
    robots = client.get("/robots.txt", REMOTE_ADDR=SCANNER).content.decode()
    hidden = [
        line.split(": ", 1)[1] for line in robots.splitlines() if line.startswith("Disallow: /") and len(line) > 11
    ]
    assert hidden, robots
    assert client.get(hidden[0], REMOTE_ADDR=SCANNER).status_code == 404
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR=SCANNER))


def test_unexpected_methods_count(client, clock):
    for _ in range(3):
        assert client.generic("PROPFIND", "/", REMOTE_ADDR=SCANNER).status_code == 405
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR=SCANNER))


def test_forged_forms_are_fed_in_from_the_csrf_check(csrf_client, clock):
    for _ in range(10):
        csrf_client.post("/accounts/login/", {"login": "a@example.com", "password": "x"}, REMOTE_ADDR=SCANNER)
    assert _blocked(csrf_client.get("/accounts/login/", REMOTE_ADDR=SCANNER))
    assert "csrf" in {e.details["point"] for e in events(EventAction.INTRUSION_DETECTED)}


def test_a_network_of_scanners_each_under_the_address_threshold_is_blocked_as_a_network(client, clock):
    for n in range(1, 9):  # 8 addresses of one /24, 2 probes each: 10 each, under... at 10 each
        for path in ("/.env", "/wp-login.php"):
            client.get(path, REMOTE_ADDR=f"198.51.100.{n}")
            if _blocked(client.get("/accounts/login/", REMOTE_ADDR=NEIGHBOUR)):
                break
    # An address that never sent anything, in the scanners' /24: blocked with the network.
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR=NEIGHBOUR))
    assert any(e.target == "network:198.51.100.0/24" for e in events(EventAction.INTRUSION_BLOCKED))
    assert client.get("/accounts/login/", REMOTE_ADDR=ELSEWHERE).status_code == 200


def test_a_signed_in_member_is_not_locked_out_by_a_scanner_on_their_network(client, company, owner, clock):
    _probe_until_blocked(client)
    member = client.__class__()
    member.force_login(owner.user)
    assert member.get("/requests/", REMOTE_ADDR=SCANNER).status_code == 200
    # Signed out, from the same address, the block applies.
    assert _blocked(client.get("/requests/", REMOTE_ADDR=SCANNER))


def test_a_signed_in_member_who_attacks_is_blocked_by_account_and_their_company_sees_it(client, company, clock):
    attacker = add_member(company, Role.RECRUITER)
    colleague = add_member(company, Role.RECRUITER)
    client.force_login(attacker.user)
    for _ in range(5):
        client.get("/requests/?q=' OR 1=1 --", REMOTE_ADDR=SCANNER)
    assert _blocked(client.get("/requests/", REMOTE_ADDR=ELSEWHERE))  # the account, from anywhere
    other = client.__class__()
    other.force_login(colleague.user)
    assert other.get("/requests/", REMOTE_ADDR=SCANNER).status_code == 200
    (block,) = events(EventAction.INTRUSION_BLOCKED)
    assert block.target == f"user:{attacker.user.pk}" and block.actor_id == attacker.user.pk
    detected = events(EventAction.INTRUSION_DETECTED)
    assert detected and all(e.company_id == company.pk for e in detected)
    # ... and not on another company's.
    assert all(e.company_id != make_company().pk for e in detected)


def test_a_real_private_link_opens_through_a_blocked_address_and_a_guess_gets_the_block(client, company, clock):
    from tests.references.workflow import REFEREES, make_request, nominate

    owner_user = company.memberships.order_by("pk").first().user
    reference_request, _ = make_request(company, owner_user, email="cara@example.org")
    _, token = nominate(company, reference_request, REFEREES[0])
    _probe_until_blocked(client)
    assert client.get(f"/r/{token}/", REMOTE_ADDR=SCANNER).status_code == 200
    assert _blocked(client.get("/r/not-a-real-token-at-all-aaaaaaaaaaaaaaaaaaaaaaa/", REMOTE_ADDR=SCANNER))


def test_addresses_operators_allow_are_never_blocked(client, clock, settings):
    settings.VOUCH_SHIELD_ALLOW = ["198.51.100.0/24"]
    for path in PROBES * 3:
        client.get(path, REMOTE_ADDR=SCANNER)
    assert client.get("/accounts/login/", REMOTE_ADDR=SCANNER).status_code == 200
    assert events(EventAction.INTRUSION_DETECTED) == []


def test_a_flood_of_new_sources_keeps_a_bounded_number_of_scores(client, clock, monkeypatch):
    monkeypatch.setattr(state, "NEW_SOURCES_PER_MINUTE", 6)
    for n in range(40):
        client.get("/.env", REMOTE_ADDR=f"10.{n}.0.1")  # 40 addresses in 40 networks
    kept = [k for k in (state._score_key(state.ADDRESS, f"10.{n}.0.1") for n in range(40)) if state.cache.get(k)]
    assert len(kept) <= 6
    # A detection strong enough on its own still blocks, budget or not.
    client.get("/", REMOTE_ADDR="10.99.0.1", HTTP_USER_AGENT="Nikto/2.5.0")
    assert _blocked(client.get("/accounts/login/", REMOTE_ADDR="10.99.0.1"))


def test_the_block_table_is_bounded_and_keeps_the_longest(clock, monkeypatch):
    monkeypatch.setattr(state, "MAX_BLOCKS", 3)
    for n in range(5):
        clock[0] += 1
        state.block(state.ADDRESS, f"192.0.2.{n}", "injection", clock[0])
    kept = {b.source for b in state.active_blocks(clock[0])}
    assert kept == {"192.0.2.2", "192.0.2.3", "192.0.2.4"}


def test_benign_requests_with_awkward_text_raise_nothing(client, company, owner, clock):
    client.force_login(owner.user)
    for query in ("O'Brien", "Smith & Jones", "Zoë Müller-Lüdenscheidt", "李小龙", "a+b (c)", "50% off; no"):
        assert client.get("/requests/", {"q": query}, REMOTE_ADDR=SCANNER).status_code == 200
    assert events(EventAction.INTRUSION_DETECTED) == []


def test_loopback_is_never_blocked(client, clock):
    """The operator on the machine, or a proxy beside it that is not configured as trusted."""
    for path in PROBES * 3:
        client.get(path, REMOTE_ADDR="127.0.0.1")
    client.get("/", REMOTE_ADDR="::1", HTTP_USER_AGENT="sqlmap/1.8")
    assert client.get("/accounts/login/", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/accounts/login/", REMOTE_ADDR="::1").status_code == 200


def test_an_allow_list_that_does_not_parse_stops_the_start(settings):
    from vouch.web.checks import configuration

    settings.VOUCH_SHIELD_ALLOW = ["10.0.0.0/33"]
    assert "vouch.E030" in [error.id for error in configuration(None)]


def test_a_member_whose_filter_has_a_mistake_is_not_blocked_while_typing_a_search(client, company, owner, clock):
    # The requests list answers 400 with the filter form's errors (a start date after the
    # end) at every keystroke of the search as you type: a form's errors, not an attack.
    client.force_login(owner.user)
    for typed in ("M", "Ma", "Mar", "Mari", "Maria", "Maria ", "Maria S") * 5:
        response = client.get(
            "/requests/",
            {"q": typed, "created_from": "2026-12-31", "created_to": "2026-01-01"},
            REMOTE_ADDR=SCANNER,
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 400 and not _blocked(response)
    assert client.get("/requests/", REMOTE_ADDR=SCANNER).status_code == 200
    assert events(EventAction.INTRUSION_DETECTED) == []
    # What is hostile in the same search still counts (and blocks the account).
    for _ in range(5):
        client.get("/requests/", {"q": "' OR 1=1 --", "created_from": "2026-12-31"}, REMOTE_ADDR=SCANNER)
    assert _blocked(client.get("/requests/", REMOTE_ADDR=SCANNER))

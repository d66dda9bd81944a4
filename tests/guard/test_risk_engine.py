"""The risk engine's pure parts: scoring, travel speed, the anonymising list, geo."""

from __future__ import annotations

import datetime as dt

import pytest

from vouch.guard import geo, risk
from vouch.guard.geo import Location

NOW = dt.datetime(2030, 3, 4, 9, 0, tzinfo=dt.UTC)
DE = geo.locate("85.214.132.117")
AU = geo.locate("139.130.4.5")


def ctx(**kw) -> risk.Context:
    base = dict(
        now=NOW,
        location=DE,
        device_known=True,
        has_history=True,
        seen_countries=frozenset({"DE"}),
        seen_networks=frozenset({DE.asn}),
    )
    return risk.Context(**{**base, **kw})


def test_usual_sign_in_scores_zero():
    assert risk.score(ctx()).decision == "allow"


@pytest.mark.parametrize(
    ("changes", "signals", "decision"),
    [
        ({"device_known": False}, ["new_device"], "notify"),
        ({"seen_networks": frozenset({"Other ISP"})}, ["new_network"], "allow"),
        ({"location": AU}, ["new_country", "new_network"], "step_up"),
        ({"anonymising": True}, ["anonymising_network"], "step_up"),
        ({"recent_failures": 5}, ["recent_failures"], "step_up"),
        ({"recent_failures": 4}, [], "allow"),
        ({"accounts_from_address": 5}, ["address_many_accounts"], "step_up"),
        (
            {"previous": risk.Previous(NOW - dt.timedelta(hours=1), DE), "location": AU},
            ["new_country", "new_network", "impossible_travel"],
            "suspend",
        ),
    ],
)
def test_each_signal_and_its_decision(changes, signals, decision):
    result = risk.score(ctx(**changes))
    assert result.signals == signals
    assert result.decision == decision


def test_the_speed_limit_is_configurable():
    previous = risk.Previous(NOW - dt.timedelta(hours=10), DE)
    slow = risk.score(ctx(previous=previous, location=AU, max_kmh=1000))
    assert "impossible_travel" in slow.signals  # ~11,000 km in 10 h
    assert "impossible_travel" not in risk.score(ctx(previous=previous, location=AU, max_kmh=2000)).signals


def test_neighbouring_countries_are_not_impossible_travel():
    france = geo.locate("80.67.169.12")
    speed = risk.travel_speed(risk.Previous(NOW - dt.timedelta(minutes=5), DE), france, NOW)
    assert speed == 0.0  # within the uncertainty of two country centres


def test_unknown_places_give_no_travel_or_place_signal():
    result = risk.score(ctx(location=geo.UNKNOWN, previous=risk.Previous(NOW, DE)))
    assert result.signals == []


def test_network_list_parses_merges_and_looks_up():
    networks = risk.NetworkList("# comment\n10.0.0.0/8\n10.1.0.0/16 # inside\n2001:db8::/32\nbad\n192.0.2.7\n")
    assert "10.200.1.1" in networks and "192.0.2.7" in networks and "2001:db8::5" in networks
    assert "11.0.0.0" not in networks and "192.0.2.8" not in networks and "::1" not in networks
    assert "not an ip" not in networks
    assert networks.size == 3


def test_geo_ipv6_private_and_mapped_addresses():
    assert geo.locate("2a00:1450:4001:80b::200e").country == "DE"
    assert geo.locate("::ffff:139.130.4.5").country == "AU"
    for private in ("::1", "fe80::1", "192.168.1.1", "100.64.0.1", "garbage", "", None):
        assert geo.locate(private) == geo.UNKNOWN
    assert geo.country_name("85.214.132.117") == "Germany"


def test_every_country_has_a_centre():
    table = geo.centroids()
    assert len(table) > 240
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon, _ in table.values())
    assert round(geo.distance_km(DE, AU)) in range(13_000, 15_000)


def test_a_replaced_backend_is_used(monkeypatch):
    class Fixed:
        def lookup(self, ip):
            return Location(country="NZ", country_name="New Zealand", asn="Test")

    monkeypatch.setattr(geo, "_backend", None)
    geo.set_backend(Fixed())
    try:
        assert geo.locate("8.8.8.8").country == "NZ"
    finally:
        geo.set_backend(None)
    assert geo.locate("8.8.8.8").country == "US"

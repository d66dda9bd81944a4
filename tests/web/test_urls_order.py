"""vouch.urls lists the most-opened pages first (the private links, the requests
dashboard), because Django tries patterns in order. That is only safe while no
pattern shadows another: every address each route describes must reach that route."""

from __future__ import annotations

import re
import uuid

from django.urls import get_resolver, resolve
from django.urls.resolvers import RegexPattern, URLResolver


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif not isinstance(pattern.pattern, RegexPattern):  # allauth's regexes: no sample address
            yield prefix + str(pattern.pattern)


def _sample(route: str) -> str:
    route = re.sub(r"<uuid:\w+>", str(uuid.UUID(int=7)), route)
    route = re.sub(r"<int:\w+>", "7", route)
    return "/" + re.sub(r"<(?:str|slug|path):\w+>", "sample-Token_123", route)


def test_every_route_is_reached_by_its_own_addresses():
    routes = [route for route in _routes(get_resolver().url_patterns) if "^" not in route]
    assert len(routes) > 90
    assert routes[0].startswith("c/<str:token>/")  # the private links are tried first
    reached = {route: resolve(_sample(route)).route for route in routes}
    assert {route: other for route, other in reached.items() if other != route} == {}

"""Static files storage: WhiteNoise's compressed, hashed files, with their addresses
looked up once.

Each ``{% static %}`` asks the storage for a file's hashed address, which takes a
manifest lookup and URL parsing every time (three of them were 6% of drawing the
referee's questionnaire page). The manifest is read once at start-up and does not
change while the server runs, so neither does an address."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name: str | None, force: bool = False) -> str:
        if force or name is None:
            return super().url(name, force)
        found = self._urls.get(name)
        if found is None:
            found = self._urls[name] = super().url(name)
        return found

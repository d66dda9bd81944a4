from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "vouch.links"
    label = "links"
    verbose_name = "Private links"

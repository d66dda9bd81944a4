"""Fail-closed routing: company models go to the current company's database only.

Control models (users, sessions, companies, memberships, security events) live
in the default database; models of ``VOUCH_COMPANY_APPS`` live only in company
databases and are routed through the current company context, whatever
database an object passed in says it came from."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from vouch.core.context import WrongCompanyDatabase, current, is_company_alias
from vouch.tenancy import connections
from vouch.tenancy.events import record_wrong_database

TEMPLATE_PREFIX = "companytemplate_"


def is_company_app(app_label: str) -> bool:
    return app_label in settings.VOUCH_COMPANY_APPS


def is_company_database(alias: str) -> bool:
    return is_company_alias(alias) or alias.startswith(TEMPLATE_PREFIX)


class CompanyRouter:
    def _company_alias(self, model, hints) -> str:
        context = current()  # raises NoCompanyContext: no context, no query
        alias = connections.ensure_alias(context)
        instance = hints.get("instance")
        source = getattr(getattr(instance, "_state", None), "db", None)
        if source is not None and source != alias:
            record_wrong_database(expected=str(context.company_id), found=source, where=model._meta.label)
            raise WrongCompanyDatabase(
                f"{model._meta.label} object from {source} used in the context of company {context.company_id}"
            )
        return alias

    def db_for_read(self, model, **hints):
        if is_company_app(model._meta.app_label):
            return self._company_alias(model, hints)
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return self.db_for_read(model, **hints)

    def allow_relation(self, obj1, obj2, **hints):
        # Relations only within one database: never from company data to control
        # rows or to another company's rows.
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if is_company_database(db):
            return is_company_app(app_label)
        return db == DEFAULT_DB_ALIAS and not is_company_app(app_label)

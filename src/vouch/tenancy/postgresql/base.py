"""Django's PostgreSQL backend, logging in as a company's own role.

A company connection's password is derived from the company's keys
(``vouch.vault.keyring.role_password``) when the connection opens, not when its
settings are made: entering a company context stays free (no key is unwrapped for a
context that never queries), and the password is never kept in the settings entry.

PostgreSQL refusing the role the database (it lacks CONNECT: the database at this name
is not this company's, say after a swap or a restore under the wrong name) is the same
event as the identity check's refusal, and is recorded and raised as such."""

from __future__ import annotations

from django.db.backends.postgresql import base

from vouch.core.context import WrongCompanyDatabase
from vouch.tenancy.events import record_wrong_database

# libpq's words for a role without the CONNECT privilege (no SQLSTATE reaches the client
# for a refused connection: psycopg gives only the message).
NO_CONNECT_PRIVILEGE = "permission denied for database"


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        company_id = self.settings_dict.get("VOUCH_COMPANY_ID")
        if company_id and self.settings_dict.get("VOUCH_COMPANY_ROLE"):
            # imported here: the database backend loads while the app registry loads, and the keyring imports models
            from vouch.vault.keyring import role_password

            params["password"] = role_password(company_id, params["user"])
        return params

    def get_new_connection(self, conn_params):
        import psycopg

        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError as exc:
            if NO_CONNECT_PRIVILEGE not in str(exc) or not self.settings_dict.get("VOUCH_COMPANY_ID"):
                raise

            expected = self.settings_dict["VOUCH_COMPANY_ID"]
            record_wrong_database(expected=expected, found="not this company's role's database", where="connect")
            raise WrongCompanyDatabase(
                f"the database at company {expected}'s name does not admit its role ({self.settings_dict['NAME']})"
            ) from exc

"""Users, company memberships with roles, and invitations. Control database."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from vouch.accounts.policy import Role

if TYPE_CHECKING:  # Django's class is generic only in its stubs
    _UserManagerBase = BaseUserManager["User"]
else:
    _UserManagerBase = BaseUserManager


class UserManager(_UserManagerBase):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)  # None gives an unusable password
        user.save(using=self._db)
        return user

    def create_operator(self, email: str, full_name: str = "") -> User:
        """Operators run the installation; they are not members of any company."""
        return self.create_user(email, None, full_name=full_name, is_staff=True)

    create_superuser = None  # there is no all-powerful account; see `vouch operator`


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address (company member or operator)."""

    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    # is_staff marks an operator account: separate from company membership (P15).
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_operator(self) -> bool:
        return self.is_staff


class Membership(models.Model):
    """A user's place in one company. A person may belong to several companies."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey("tenancy.Company", on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "company"], name="membership_unique")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.company} as {self.get_role_display()}"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Invitation(models.Model):
    """An emailed, single-use invitation to join a company with a role.

    Only the SHA-256 of the link's token is stored: a copy of the database does not
    let anyone accept an invitation."""

    company = models.ForeignKey("tenancy.Company", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.PositiveSmallIntegerField(choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.company}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()

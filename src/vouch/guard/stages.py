"""The risk engine inside allauth's login flow.

allauth runs a list of login stages after the password check and before the session is
granted (``AccountAdapter.get_login_stages``). Vouch adds two:

- ``RiskStage``, first: refuses a suspended account; scores the sign-in, records it,
  emails a "new sign-in" notice where the score says so, and suspends the account when
  it is high enough (the session is then never granted).
- ``StepUpStage``, after allauth's 2FA stages: when the score asked for a step-up and
  the person did not just pass 2FA, asks for a one-time code sent to the account's
  email. Checks suspension again, since a "this wasn't me" click may have come while
  the sign-in waited; then marks the sign-in complete.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from allauth.account.internal.flows.login import get_authentication_records
from allauth.account.stages import LoginStage
from allauth.core.internal.httpkit import headed_redirect_response
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from vouch.audit import record
from vouch.audit.events import PLATFORM
from vouch.audit.models import EventAction, Outcome
from vouch.guard import failures, notifications, risk, suspension, throttle
from vouch.guard.models import AccountState, SignIn

log = logging.getLogger("vouch.guard")

RISK_KEY = "vouch_risk"
STEP_UP_KEY = "vouch_step_up"
CODE_DIGITS = 6
CODE_LIFETIME = 600  # seconds
CODE_ATTEMPTS = 5  # wrong codes before that sign-in attempt is abandoned
# Across sign-in attempts, per account: codes sent and wrong codes entered per hour.
CODES_PER_HOUR = 5
WRONG_PER_HOUR = 10
MFA_AUTHENTICATE_KEY = "mfa_authenticate"


def _refuse_suspended(request, user) -> tuple:
    record(
        EventAction.AUTHN_LOGIN_FAIL,
        request=request,
        actor=None,
        company=PLATFORM,
        target=f"user:{user.pk}",
        outcome=Outcome.BLOCKED,
        details={"reason": "suspended"},
    )
    state = AccountState.objects.filter(user=user).first()
    response = render(
        request,
        "guard/suspended.html",
        {"awaiting_approval": bool(state and state.awaiting_approval)},
        status=403,
    )
    return response, False


def _was_password_login(request, user) -> bool:
    records = get_authentication_records(request, user)
    return bool(records) and records[-1].get("method") == "password"


class RiskStage(LoginStage):
    key = RISK_KEY
    urlname = None

    def handle(self):
        user = self.login.user
        if user is None:
            return None, True
        if suspension.is_suspended(user):
            return _refuse_suspended(self.request, user)
        # Scores password sign-ins. Passkeys are already two factors; the email
        # confirmation sign-in right after signup has no history to compare with.
        if not _was_password_login(self.request, user):
            return None, True
        ctx, assessment = risk.assess(self.request, user, now=timezone.now())
        sign_in = risk.record(user, ctx, assessment)
        self.state["sign_in"] = sign_in.pk
        self.state["decision"] = assessment.decision
        if assessment.decision == SignIn.Decision.SUSPEND:
            suspension.suspend(
                user,
                reason=f"Suspicious sign-in from {ctx.location.describe()}: " + ", ".join(assessment.signals),
                request=self.request,
                sign_in=sign_in,
            )
            return _refuse_suspended(self.request, user)
        if assessment.decision in (SignIn.Decision.NOTIFY, SignIn.Decision.STEP_UP):
            notifications.send(
                notifications.NEW_SIGN_IN,
                user,
                request=self.request,
                occurred_at=sign_in.occurred_at,
                context={
                    "not_me_url": suspension.not_me_url(sign_in),
                    "signals": [SIGNAL_TEXT.get(s, s) for s in assessment.signals],
                    "step_up": assessment.decision == SignIn.Decision.STEP_UP,
                },
            )
        return None, True


SIGNAL_TEXT = {
    risk.NEW_DEVICE: "a browser or device not used with this account before",
    risk.NEW_NETWORK: "a network not used with this account before",
    risk.NEW_COUNTRY: "a country not used with this account before",
    risk.IMPOSSIBLE_TRAVEL: "too far from the previous sign-in for the time between them",
    risk.ANONYMISING_NETWORK: "an anonymising network (VPN or Tor)",
    risk.RECENT_FAILURES: "many wrong passwords before this one",
    risk.ADDRESS_MANY_ACCOUNTS: "an address that tried many accounts",
}


def _hash_code(code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"stepup:{code}".encode(), hashlib.sha256).hexdigest()


def _sent_key(user) -> str:
    return f"guard:stepup:sent:{user.pk}"


def _wrong_key(user) -> str:
    return f"guard:stepup:wrong:{user.pk}"


class StepUpStage(LoginStage):
    key = STEP_UP_KEY
    urlname = "guard_step_up"

    def handle(self):
        user = self.login.user
        if user is None:
            return None, True
        if suspension.is_suspended(user):
            return _refuse_suspended(self.request, user)
        risk_state = self.login.state.get("stages", {}).get(RISK_KEY, {}).get("data", {})
        sign_in_id = risk_state.get("sign_in")
        if risk_state.get("decision") == SignIn.Decision.STEP_UP and not self._passed_2fa():
            if not self.state.get("code_hash"):
                # A code is neither sent nor asked for once the hour's wrong codes are
                # used up: check_code would refuse it unread.
                if throttle.slots_taken(_wrong_key(user), WRONG_PER_HOUR) >= WRONG_PER_HOUR:
                    return self._give_up("too_many_wrong_codes")
                if not throttle.take_slot(_sent_key(user), CODES_PER_HOUR, 3600):
                    return self._give_up("too_many_codes")
                self._issue_code()
            return headed_redirect_response(self.urlname), True
        self.complete(sign_in_id)
        return None, True

    def _passed_2fa(self) -> bool:
        # allauth's 2FA stage runs before this one and marks that it asked; reaching
        # this stage means the code was right. A browser trusted by allauth skips 2FA,
        # and then the emailed code is asked instead.
        mfa = self.login.state.get("stages", {}).get(MFA_AUTHENTICATE_KEY, {}).get("data", {})
        return bool(mfa.get("authentication_required"))

    def _issue_code(self) -> None:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        # code_id names this code's allowance of tries in the cache (check_code).
        self.state.update(code_hash=_hash_code(code), code_id=secrets.token_hex(8), expires=time.time() + CODE_LIFETIME)
        notifications.send(
            notifications.STEP_UP_CODE,
            self.login.user,
            request=self.request,
            context={"code": code, "minutes": CODE_LIFETIME // 60},
        )

    def check_code(self, code: str) -> str:
        """One of ok, wrong, expired or locked (too many wrong codes: start again).

        Both limits are counted in the cache *before* the code is compared, each try
        taking one slot of a fixed allowance (``throttle.take_slot``, atomic): the
        pending sign-in lives in the session, which parallel requests each read before
        any of them writes, so a count kept there would let N parallel guesses all be
        compared. A try beyond either allowance is refused without looking at the code,
        even when the code is right."""
        user = self.login.user
        code = "".join(ch for ch in (code or "") if ch.isdigit())
        expected, code_id = self.state.get("code_hash"), self.state.get("code_id")
        # A code issued before codes had an id has no allowance of its own: start again.
        if not expected or not code_id or time.time() > float(self.state.get("expires", 0)):
            return "expired"
        tries = throttle.take_slot(f"guard:stepup:try:{user.pk}:{code_id}", CODE_ATTEMPTS, CODE_LIFETIME)
        if not tries:
            return "locked"
        wrong = throttle.take_slot(_wrong_key(user), WRONG_PER_HOUR, 3600)
        if not wrong:
            return "locked"
        if len(code) == CODE_DIGITS and hmac.compare_digest(_hash_code(code), expected):
            # Single use: the code is forgotten as soon as it has worked; its try was
            # not a wrong one.
            self.state.pop("code_hash", None)
            throttle.give_back_slot(_wrong_key(user), wrong)
            return "ok"
        record(
            EventAction.AUTHN_STEP_UP_FAIL,
            request=self.request,
            actor=None,
            company=PLATFORM,
            target=f"user:{user.pk}",
            outcome=Outcome.FAILURE,
        )
        if tries >= CODE_ATTEMPTS or wrong >= WRONG_PER_HOUR:
            return "locked"
        return "wrong"

    def _give_up(self, reason: str):
        log.warning("guard: step-up refused for user %s (%s)", self.login.user.pk, reason)
        response = render(self.request, "guard/step_up_locked.html", status=429)
        return response, False

    def complete(self, sign_in_id: int | None) -> None:
        user = self.login.user
        if sign_in_id:
            SignIn.objects.filter(pk=sign_in_id, user=user).update(completed_at=timezone.now())
        failures.reset(user)

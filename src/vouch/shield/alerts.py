"""Operators hear of each incident once: an email when a source is first blocked.

An incident is a source's block and its escalations while its level is remembered
(``state.LEVEL_MEMORY``): the first block (level 1) is mailed, the longer ones that follow
are not. The email is sent by a task, not in the request that tipped the block: the task
takes no arguments (no addresses in the task queue), reads the blocks in force, and mails
every level-1 block not mailed yet in one email. A flood that blocks many sources queues
one task every ``QUEUE_EVERY`` seconds and sends at most ``MAILS_PER_HOUR`` emails an hour;
the operators' page (/operator/security/) always lists every block."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django_tasks import task

from vouch.accounts.models import User
from vouch.shield import state
from vouch.shield.points import POINTS

log = logging.getLogger("vouch.shield")

QUEUE_EVERY = 30
MAILS_PER_HOUR = 10


def _mailed_key(block: state.Block) -> str:
    return f"sh:m:{state.CODES[block.scope]}:{state.blind(block.source)}"


def queue_block_alert(block: state.Block) -> None:
    if block.level != 1:
        return  # an escalation of an incident already mailed
    try:
        if state.cache.add("sh:mail:queued", 1, QUEUE_EVERY):
            send_block_alerts.enqueue()
    except Exception:  # the next block queues it; the page lists this one anyway
        log.exception("shield: could not queue the operators' alert")


def pending(moment: float) -> list[state.Block]:
    """Blocks in force that began an incident and were not mailed yet."""
    blocks = [b for b in state.active_blocks(moment) if b.level == 1]
    if not blocks:
        return []
    mailed = state.cache.get_many([_mailed_key(b) for b in blocks])
    return [b for b in blocks if _mailed_key(b) not in mailed]


@task()
def send_block_alerts() -> int:
    """Mail the operators the incidents not mailed yet; returns how many it named."""
    moment = state.now()
    blocks = pending(moment)
    if not blocks:
        return 0
    hour_key = f"sh:mail:h:{int(moment // 3600)}"
    if not state.cache.add(hour_key, 1, 3600):
        try:
            sent = state.cache.incr(hour_key)
        except ValueError:
            sent = 1
        if sent > MAILS_PER_HOUR:
            log.warning("shield: %d new blocks not mailed (the hour's emails are used up)", len(blocks))
            return 0
    recipients = list(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    if not recipients:
        log.warning("shield: sources blocked but no operator account to tell")
        return 0
    lines = [
        f"- {b.scope} {b.source}: {POINTS[b.reason].label if b.reason in POINTS else b.reason}; "
        f"blocked for {int(b.until - moment) // 60 or 1} min"
        for b in sorted(blocks, key=lambda b: (b.scope, b.source))[:50]
    ]
    more = len(blocks) - len(lines)
    body = (
        "Vouch's intrusion detection blocked new sources:\n\n"
        + "\n".join(lines)
        + (f"\n- and {more} more\n" if more > 0 else "\n")
        + "\nA blocked source gets a 403 for a growing time (1 min, 10 min, 1 h, 1 day) while it keeps on."
        + f"\nEvery block and why: {settings.PUBLIC_URL}/operator/security/\n"
    )
    subject = f"[Vouch] {len(blocks)} source{'s' if len(blocks) != 1 else ''} blocked by intrusion detection"
    send_mail(subject, body, None, recipients)
    state.cache.set_many({_mailed_key(b): 1 for b in blocks}, state.LEVEL_MEMORY)
    return len(blocks)

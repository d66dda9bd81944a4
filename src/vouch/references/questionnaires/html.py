"""The questions of the referee's questionnaire page as HTML, drawn in Python.

This is the page a referee keeps open and reloads while answering, on the hot path
`make bench` measures. Drawn by Django's template engine, these few dozen elements (a
loop over the questions, and inside it over each question's choices, with a condition
on nearly every attribute) were most of the page's cost: about 0.9 ms of the 1.2 ms
it took to draw. Here each value is escaped with Django's ``escape`` on the way in,
exactly as the template's autoescaping did, and the markup is the one the template had
(the page's script, ``vouch.js``, reads its ``data-`` attributes)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# The hidden field a multiple-choice question sends, so unticking every box clears it.
SHOWN_MULTIPLE = "shown-multiple"


def filled(value) -> bool:
    """Whether an answer has been given (an empty text or no box ticked is none)."""
    return value not in (None, "", [])


def _choices(question: dict) -> list[tuple[str, str]]:
    """(value, label) of each radio button or tick box of a question."""
    kind = question["type"]
    if kind == "rating":
        scale = question["scale"]
        return [(str(point), str(point)) for point in range(int(scale["min"]), int(scale["max"]) + 1)]
    if kind == "yes_no":
        return [("yes", "Yes"), ("no", "No")]
    return [(str(choice), str(choice)) for choice in question.get("choices", ())]


def _chosen(kind: str, value) -> set[str]:
    if kind == "multiple":
        return {str(item) for item in value} if isinstance(value, list) else {str(value)} if value else set()
    return {str(value)} if filled(value) else set()


def _inputs(question: dict, value, name: str, *, css: str) -> str:
    kind, qid = question["type"], escape(question["id"])
    input_type = "checkbox" if kind == "multiple" else "radio"
    chosen = _chosen(kind, value)
    parts = []
    choices = _choices(question)
    for index, (choice, label) in enumerate(choices):
        option_id = f"q-{qid}-{index}"
        checked = " checked" if choice in chosen else ""
        # A rating's two ends are described by the scale's labels ("1 = Not at all"), which
        # are drawn beside the row of buttons: tied to the first and last button here.
        described = ""
        if kind == "rating" and index in (0, len(choices) - 1):
            described = f' aria-describedby="scale-{"low" if index == 0 else "high"}-{qid}"'
        parts.append(
            f'<label class="{css}" for="{option_id}"><input type="{input_type}" name="{name}" id="{option_id}" '
            f'value="{escape(choice)}"{described}{checked}> {escape(label)}</label>'
        )
    return "".join(parts)


def _field(question: dict, value, name: str) -> str:
    kind = question["type"]
    if kind == "text":
        text = value if isinstance(value, str) else ""
        required = ' aria-required="true"' if question.get("required") else ""
        return (
            f'<textarea name="{name}" id="{name}" rows="5" maxlength="5000" aria-label="{escape(question["prompt"])}"'
            f"{required}>{escape(text)}</textarea>"
        )
    if kind == "rating":
        scale, qid = question["scale"], escape(question["id"])
        return (
            '<div class="scale">'
            f'<span class="scale-end muted" id="scale-low-{qid}">'
            f"{escape(scale['min'])} = {escape(scale.get('low_label', ''))}</span>"
            f'<div class="scale-points">{_inputs(question, value, name, css="choice point")}</div>'
            f'<span class="scale-end muted" id="scale-high-{qid}">'
            f"{escape(scale['max'])} = {escape(scale.get('high_label', ''))}</span>"
            "</div>"
        )
    hidden = ""
    if kind == "multiple":
        hidden = f'<input type="hidden" name="{SHOWN_MULTIPLE}" value="{escape(question["id"])}">'
    inline = " inline-choices" if kind == "yes_no" else ""
    return f'{hidden}<div class="choices{inline}">{_inputs(question, value, name, css="choice")}</div>'


def _question(number: int, question: dict, value, error: str) -> str:
    qid = escape(question["id"])
    name = f"q-{qid}"
    required = bool(question.get("required"))
    help_text = question.get("help") or ""
    described = ""
    if error or help_text:
        described = f' aria-describedby="{f"help-{qid} " if help_text else ""}error-{qid}"'
    mark = '<span class="required">required</span>' if required else '<span class="muted">(optional)</span>'
    return (
        f'<li class="card question{" has-error" if error else ""}" id="question-{qid}" data-question="{qid}"'
        f"{' data-required' if required else ''}>"
        f"<fieldset{described}>"
        f'<legend><span class="qnum">{number}.</span> {escape(question["prompt"])} {mark}</legend>'
        + (f'<p class="helptext" id="help-{qid}">{escape(help_text)}</p>' if help_text else "")
        + f'<p class="errorlist field-error" id="error-{qid}" data-error-for="{qid}">{escape(error)}</p>'
        f"{_field(question, value, name)}"
        "</fieldset></li>"
    )


def questions_html(questions: list[dict], values: dict, errors: dict) -> SafeString:
    """Every question as an ``<li>`` of the page's ``<ol class="questions">``, with the
    saved (or just posted) ``values`` filled in and ``errors`` shown by their question."""
    return mark_safe(  # noqa: S308 - every value above went through escape()
        "".join(
            _question(number, question, values.get(question["id"]), errors.get(question["id"], ""))
            for number, question in enumerate(questions, 1)
        )
    )

"""Checking a referee's answers against the questionnaire version their request pinned.

Answers are a dict ``{question id: value}``: text a string, rating an int within the
scale, yes_no "yes" or "no", single one of the choices, multiple a list of choices.
Saving progress accepts any subset of valid answers; submitting needs every required
one. Anything not in the version (an unknown id, a value of the wrong shape) is
refused, never stored: what is kept is exactly what the report will show."""

from __future__ import annotations

MAX_TEXT = 5000


def _clean(question: dict, value) -> tuple[object | None, str | None]:
    """(cleaned value or None when empty, error message or None)."""
    kind = question["type"]
    if kind == "text":
        if value is None:
            return None, None
        if not isinstance(value, str):
            return None, "Enter text."
        value = value.strip()
        if len(value) > MAX_TEXT:
            return None, f"Keep this under {MAX_TEXT} characters (it has {len(value)})."
        return (value or None), None
    if kind == "rating":
        if value in (None, ""):
            return None, None
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None, "Choose a rating."
        scale = question["scale"]
        if not scale["min"] <= number <= scale["max"]:
            return None, f"Choose a rating from {scale['min']} to {scale['max']}."
        return number, None
    if kind == "yes_no":
        if value in (None, ""):
            return None, None
        if value not in ("yes", "no"):
            return None, "Choose yes or no."
        return value, None
    if kind == "single":
        if value in (None, ""):
            return None, None
        if value not in question["choices"]:
            return None, "Choose one of the options."
        return value, None
    if kind == "multiple":
        if value in (None, "", []):
            return None, None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(item not in question["choices"] for item in value):
            return None, "Choose from the options."
        # Keep the questionnaire's order and drop repeats.
        return [choice for choice in question["choices"] if choice in value], None
    return None, "This question cannot be answered."


def clean(questions: list[dict], submitted: dict, *, final: bool) -> tuple[dict, dict[str, str]]:
    """(clean answers, errors by question id). With ``final`` every required question
    must be answered. Unknown ids are an error under the key ``"__all__"``."""
    by_id = {question["id"]: question for question in questions}
    cleaned: dict = {}
    errors: dict[str, str] = {}
    unknown = [key for key in submitted if key not in by_id]
    if unknown:
        errors["__all__"] = "Some answers do not belong to this questionnaire."
    for question in questions:
        if not final and question["id"] not in submitted:
            continue
        value, error = _clean(question, submitted.get(question["id"]))
        if error:
            errors[question["id"]] = error
        elif value is not None:
            cleaned[question["id"]] = value
        elif final and question.get("required"):
            errors[question["id"]] = "This question needs an answer."
    return cleaned, errors


def from_post(questions: list[dict], post) -> dict:
    """The answers in a submitted form (``q-<id>`` fields; lists for multiple choice)."""
    submitted: dict = {}
    for question in questions:
        name = f"q-{question['id']}"
        if question["type"] == "multiple":
            values = post.getlist(name)
            if values:
                submitted[question["id"]] = values
        elif name in post:
            submitted[question["id"]] = post.get(name)
    return submitted

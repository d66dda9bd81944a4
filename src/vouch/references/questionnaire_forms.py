"""The questionnaire builder without JavaScript: the page posts every question's
fields (q-<n>-prompt, ...) and a button named ``op`` saying what to do: save, add a
question, or remove / move question n. Anything posted is only ever turned into a
question list and checked by ``questionnaires.problems``: a damaged or forged post
gets errors on the page, never a 500."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.http import QueryDict

from vouch.core.text import SingleLineField
from vouch.references import questionnaires as q

MAX_ROWS = q.MAX_QUESTIONS
OPS = ("save", "add", "remove", "up", "down")


class DetailsForm(forms.Form):
    name = SingleLineField(max_length=200, label="Name")
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description"
    )


@dataclass
class Row:
    """One question as the builder shows it (strings as typed), with its errors."""

    id: str = ""
    type: str = "text"
    prompt: str = ""
    help: str = ""
    required: bool = True
    choices_text: str = ""
    scale_max: str = "5"
    low_label: str = ""
    high_label: str = ""
    errors: list[str] = field(default_factory=list)

    def question(self) -> dict:
        """The question this row describes, with only the keys its type takes."""
        question: dict = {"id": self.id.strip(), "type": self.type, "prompt": self.prompt.strip()}
        if self.help.strip():
            question["help"] = self.help.strip()
        question["required"] = self.required
        if self.type in q.CHOICE_TYPES:
            question["choices"] = [line.strip() for line in self.choices_text.splitlines() if line.strip()]
        if self.type == "rating":
            maximum = self.scale_max.strip()
            question["scale"] = {
                "min": 1,
                "max": int(maximum) if maximum.isascii() and maximum.isdigit() and len(maximum) < 4 else maximum,
                "low_label": self.low_label.strip(),
                "high_label": self.high_label.strip(),
            }
        return question

    @classmethod
    def of(cls, question: dict) -> Row:
        scale = question.get("scale") or {}
        return cls(
            id=question.get("id", ""),
            type=question.get("type", "text"),
            prompt=question.get("prompt", ""),
            help=question.get("help", ""),
            required=bool(question.get("required")),
            choices_text="\n".join(question.get("choices", [])),
            scale_max=str(scale.get("max", 5)),
            low_label=scale.get("low_label", ""),
            high_label=scale.get("high_label", ""),
        )


def blank_row(rows: list[Row]) -> Row:
    return Row(id=q.next_question_id([{"id": row.id} for row in rows]))


def rows_from_questions(questions: list[dict]) -> list[Row]:
    return [Row.of(question) for question in questions]


class Builder:
    """The posted builder: details form, rows, the requested operation and errors."""

    def __init__(self, data: QueryDict | None, initial: dict | None = None, questions: list[dict] | None = None):
        self.errors: list[str] = []  # for the list as a whole
        self.op = "save"
        self.target: int | None = None
        if data is None:
            self.details = DetailsForm(initial=initial)
            self.rows = rows_from_questions(questions or [])
            if not self.rows:
                self.rows = [blank_row([])]
            self.bound = False
            return
        self.bound = True
        self.details = DetailsForm(data)
        self.rows = self._rows(data)
        self._operation(data.get("op", "save"))

    def _rows(self, data: QueryDict) -> list[Row]:
        count = data.get("count", "")
        if not (count.isascii() and count.isdigit() and len(count) <= 3):
            self.errors.append("The form was incomplete. Please check the questions and save again.")
            return []
        rows = []
        for index in range(min(int(count), MAX_ROWS)):
            prefix = f"q-{index}-"
            if f"{prefix}type" not in data:
                continue  # a field set the post left out: nothing to keep
            rows.append(
                Row(
                    id=data.get(f"{prefix}id", "")[:40],
                    type=data.get(f"{prefix}type", "")[:20],
                    prompt=data.get(f"{prefix}prompt", "")[: q.MAX_PROMPT + 100],
                    help=data.get(f"{prefix}help", "")[: q.MAX_HELP + 100],
                    required=bool(data.get(f"{prefix}required")),
                    choices_text=data.get(f"{prefix}choices", "")[:5000],
                    scale_max=data.get(f"{prefix}scale_max", "5")[:5],
                    low_label=data.get(f"{prefix}low_label", "")[: q.MAX_LABEL + 50],
                    high_label=data.get(f"{prefix}high_label", "")[: q.MAX_LABEL + 50],
                )
            )
        if int(count) > MAX_ROWS:
            self.errors.append(f"A questionnaire can have at most {MAX_ROWS} questions.")
        return rows

    def _operation(self, op: str) -> None:
        name, _, index = op.partition("-")
        if name not in OPS:
            name = "save"
        if name in ("remove", "up", "down"):
            if not (index.isascii() and index.isdigit() and int(index) < len(self.rows)):
                name = "noop"  # a stale or forged button: show the page again
            else:
                self.target = int(index)
        self.op = name

    def apply(self) -> bool:
        """Carry out add/remove/move on the rows; True when the request was one of
        those (the page is shown again), False when it asks to save."""
        rows, target = self.rows, self.target
        if self.op == "add":
            if len(rows) < MAX_ROWS:
                rows.append(blank_row(rows))
            else:
                self.errors.append(f"A questionnaire can have at most {MAX_ROWS} questions.")
        elif self.op == "remove" and target is not None:
            rows.pop(target)
        elif self.op == "up" and target is not None and target > 0:
            rows[target - 1], rows[target] = rows[target], rows[target - 1]
        elif self.op == "down" and target is not None and target < len(rows) - 1:
            rows[target + 1], rows[target] = rows[target], rows[target + 1]
        return self.op != "save"

    def questions(self) -> list[dict]:
        return [row.question() for row in self.rows]

    def is_valid(self) -> bool:
        """Details and every question checked; errors placed on their question."""
        details_ok = self.details.is_valid()
        if self.errors:
            return False
        for problem in q.problems(self.questions()):
            if problem.index is None:
                self.errors.append(problem.message)
            else:
                self.rows[problem.index].errors.append(problem.message[:1].upper() + problem.message[1:])
        return details_ok and not self.errors and not any(row.errors for row in self.rows)

    def context(self) -> dict:
        return {
            "details": self.details,
            "rows": self.rows,
            "list_errors": self.errors,
            "types": list(q.TYPES.items()),
            "scale_maxima": [str(m) for m in q.SCALE_MAXIMA],
            "count": len(self.rows),
            "has_errors": bool(self.errors or self.details.errors or any(row.errors for row in self.rows)),
        }

"""The questionnaire builder. Nothing is kept on the server until Save: the page posts
every question's fields (q-<n>-prompt, ...) and ``op`` saying what to do: save, add a
question, remove / move up / move down / show the fields of question n (``retype-<n>``),
put the questions in a new ``order`` (dragged), or check question n as it is typed
(``check-<n>``, ``check-details``). Without JavaScript the buttons post the form and
the whole page comes back; with htmx the same posts come back as the parts of the page
they change. Anything posted is only ever turned into a question list and checked by
``questionnaires.problems``: a damaged or forged post gets errors on the page, never a 500."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.http import QueryDict

from vouch.core.text import SingleLineField
from vouch.references.questionnaires import services as q

MAX_ROWS = q.MAX_QUESTIONS
OPS = ("save", "add", "remove", "up", "down", "retype", "check", "order")
INDEXED = ("remove", "up", "down", "retype", "check")
# The fields every question shows, each with a message slot of its own (Row.shown adds
# its type's); problems about anything else (a forged id) show for the question as a whole.
COMMON_FIELDS = ("type", "prompt", "help")


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
    errors: list[str] = field(default_factory=list)  # about the question as a whole
    field_errors: dict[str, str] = field(default_factory=dict)  # one message per field shown
    focus: str = ""  # the part the keyboard goes to when the builder comes back ("up", "type", ...)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.field_errors)

    @property
    def shown(self) -> tuple[str, ...]:
        """The fields drawn for this question's type, each with its message slot."""
        if self.type in q.CHOICE_TYPES:
            return (*COMMON_FIELDS, "choices")
        if self.type == "rating":
            return (*COMMON_FIELDS, "scale_max", "low_label", "high_label")
        return COMMON_FIELDS

    @property
    def slots(self) -> list[tuple[str, str]]:
        return [(part, self.field_errors.get(part, "")) for part in self.shown]

    def add_problem(self, part: str, message: str) -> None:
        message = message[:1].upper() + message[1:]
        if part in self.shown and part not in self.field_errors:
            self.field_errors[part] = message
        else:
            self.errors.append(message)

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


def row_posted(data: QueryDict, index: int) -> Row | None:
    """Question ``index`` as posted (each value cut to a little over its limit, so a
    huge post costs nothing), or None when the post has no such question."""
    prefix = f"q-{index}-"
    if f"{prefix}type" not in data:
        return None  # a field set the post left out: nothing to keep
    return Row(
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


def _permutation(text: str, count: int) -> list[int] | None:
    """The posted order ("2,0,1": the old positions in their new order), or None unless
    it names each of the ``count`` questions exactly once."""
    parts = text.split(",") if len(text) <= 4 * MAX_ROWS else []
    if not all(part.isascii() and part.isdigit() and len(part) <= 3 for part in parts):
        return None
    order = [int(part) for part in parts]
    return order if sorted(order) == list(range(count)) and count > 0 else None


def rows_from_questions(questions: list[dict]) -> list[Row]:
    return [Row.of(question) for question in questions]


class Builder:
    """The posted builder: details form, rows, the requested operation and errors."""

    def __init__(self, data: QueryDict | None, initial: dict | None = None, questions: list[dict] | None = None):
        self.errors: list[str] = []  # for the list as a whole
        self.op = "save"
        self.target: int | None = None
        self.order: list[int] | None = None
        self.focus = ""
        self.status = ""
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
        self._operation(data)

    def _rows(self, data: QueryDict) -> list[Row]:
        count = data.get("count", "")
        if not (count.isascii() and count.isdigit() and len(count) <= 3):
            self.errors.append("The form was incomplete. Please check the questions and save again.")
            return []
        rows = []
        for index in range(min(int(count), MAX_ROWS)):
            row = row_posted(data, index)
            if row is not None:
                rows.append(row)
        if int(count) > MAX_ROWS:
            self.errors.append(f"A questionnaire can have at most {MAX_ROWS} questions.")
        return rows

    def _operation(self, data: QueryDict) -> None:
        name, _, index = data.get("op", "save").partition("-")
        if name not in OPS:
            name = "save"
        if name == "check" and index == "details":
            self.op = "check-details"
            return
        if name in INDEXED:
            if not (index.isascii() and index.isdigit() and len(index) <= 3 and int(index) < len(self.rows)):
                name = "noop"  # a stale or forged button: show the page again
            else:
                self.target = int(index)
        if name == "order":
            self.order = _permutation(data.get("order", ""), len(self.rows))
            if self.order is None:
                name = "noop"
            dragged = data.get("dragged", "")
            if dragged.isascii() and dragged.isdigit() and len(dragged) <= 3 and int(dragged) < len(self.rows):
                self.target = int(dragged)
        self.op = name

    def apply(self) -> bool:
        """Carry out add/remove/move/order on the rows; True when the request was not a
        save (the builder is shown again), False when it asks to save. ``focus`` names the
        element the keyboard should be on next, ``status`` says what happened."""
        rows, target = self.rows, self.target
        if self.op == "add":
            if len(rows) < MAX_ROWS:
                rows.append(blank_row(rows))
                rows[-1].focus = "type"
                self.status = f"Question {len(rows)} added."
            else:
                self.errors.append(f"A questionnaire can have at most {MAX_ROWS} questions.")
        elif self.op == "remove" and target is not None:
            rows.pop(target)
            if rows:
                rows[min(target, len(rows) - 1)].focus = "heading"
            else:
                self.focus = "add-question"
            self.status = f"Question {target + 1} removed."
        elif self.op in ("up", "down") and target is not None:
            # Focus stays on the button pressed, now on the moved question (at either end
            # the button is still there, marked unavailable, so the focus is not lost).
            to = target - 1 if self.op == "up" else target + 1
            if 0 <= to < len(rows):
                rows[to], rows[target] = rows[target], rows[to]
                self.status = f"Question {target + 1} moved {self.op} to position {to + 1}."
            else:
                to = target
                self.status = f"Question {target + 1} is already {'first' if self.op == 'up' else 'last'}."
            rows[to].focus = self.op
        elif self.op == "order" and self.order is not None:
            order = self.order
            self.rows = [rows[old] for old in order]
            # The keyboard goes to the dragged question (builder.js says which; else the
            # one that travelled farthest).
            if target is not None:
                new = order.index(target)
            else:
                new = max(range(len(order)), key=lambda i: abs(order[i] - i))
            if order[new] != new:
                self.rows[new].focus = "heading"
                self.status = f"Question {order[new] + 1} moved to position {new + 1}."
        elif self.op == "retype" and target is not None:
            rows[target].focus = "type"
        return self.op != "save"

    def questions(self) -> list[dict]:
        return [row.question() for row in self.rows]

    def is_valid(self) -> bool:
        """Details and every question checked; errors placed on their question and field."""
        details_ok = self.details.is_valid()
        if self.errors:
            return False
        self._place(q.problems(self.questions()))
        return details_ok and not self.errors and not any(row.has_errors for row in self.rows)

    def check(self, typed_in: str = "") -> list[tuple[str, str]]:
        """Check the part ``check-<n>`` or ``check-details`` names, as it is typed: the
        (slot id, message) of each field whose message is to be shown again, "" when fine.
        ``typed_in`` is the name of the field typed in (htmx says which): only its message
        changes, so the fields not reached yet are not marked while another is typed in."""
        if self.op == "check-details":
            self.details.is_valid()
            return [
                (f"id_{name}_error", self._first(self.details.errors.get(name)))
                for name in ("name", "description")
                if typed_in in ("", name)
            ]
        if self.target is None:
            return []
        row = self.rows[self.target]
        # The whole list is checked (an id must differ from the others'); only this question's problems are shown.
        for problem in q.problems(self.questions()):
            if problem.index == self.target:
                row.add_problem(problem.field, problem.message)
        part = typed_in.removeprefix(f"q-{self.target}-")
        return [(f"q-{self.target}-{name}-error", message) for name, message in row.slots if part in ("", name)]

    @staticmethod
    def _first(errors) -> str:
        return str(errors[0]) if errors else ""

    def _place(self, found: list[q.Problem]) -> None:
        for problem in found:
            if problem.index is None:
                self.errors.append(problem.message)
            else:
                self.rows[problem.index].add_problem(problem.field, problem.message)

    def row_context(self, index: int) -> dict:
        """What ``_question.html`` needs to draw question ``index`` on its own."""
        return {"row": self.rows[index], "index": index, "first": index == 0, "last": index == len(self.rows) - 1}

    def context(self) -> dict:
        return {
            "details": self.details,
            "rows": self.rows,
            "list_errors": self.errors,
            "types": list(q.TYPES.items()),
            "scale_maxima": [str(m) for m in q.SCALE_MAXIMA],
            "count": len(self.rows),
            "has_errors": bool(self.errors or self.details.errors or any(row.has_errors for row in self.rows)),
            "focus": self.focus,
            "status": self.status,
        }

"""The built-in questionnaire library, versioned with the code.

Companies see these read-only and can copy one as the starting point of their own
template. Each has a stable key (never reused for different content: a request sent
with a built-in is pinned to a stored snapshot of its questions, see
``questionnaires.builtin_version``). Question ids are stable short ids: answers are
keyed by them."""

from __future__ import annotations

RELATIONSHIP = {
    "id": "relationship",
    "type": "single",
    "prompt": "How did you work with the candidate?",
    "required": True,
    "choices": ["I managed them", "They managed me", "Peer or colleague", "Client or customer", "Other"],
}
DATES = {
    "id": "dates",
    "type": "text",
    "prompt": "When did you work together, and what was their role?",
    "help": "Approximate dates are fine.",
    "required": True,
}


def _rating(qid: str, prompt: str, low: str = "Poor", high: str = "Excellent", required: bool = True) -> dict:
    return {
        "id": qid,
        "type": "rating",
        "prompt": prompt,
        "required": required,
        "scale": {"min": 1, "max": 5, "low_label": low, "high_label": high},
    }


BUILTINS: dict[str, dict] = {
    "general-professional": {
        "name": "General professional",
        "description": "A balanced reference for most roles: context, reliability, strengths and rehire.",
        "questions": [
            RELATIONSHIP,
            DATES,
            _rating("reliability", "How reliable were they?", "Unreliable", "Completely reliable"),
            _rating("quality", "How would you rate the quality of their work?"),
            {"id": "strengths", "type": "text", "prompt": "What are their main strengths?", "required": True},
            {
                "id": "develop",
                "type": "text",
                "prompt": "What areas could they develop?",
                "required": False,
            },
            {"id": "rehire", "type": "yes_no", "prompt": "Would you work with or hire them again?", "required": True},
            {
                "id": "anything_else",
                "type": "text",
                "prompt": "Is there anything else we should know?",
                "required": False,
            },
        ],
    },
    "people-manager": {
        "name": "People manager",
        "description": "For roles that lead a team: leadership, development of people and handling conflict.",
        "questions": [
            RELATIONSHIP,
            DATES,
            {
                "id": "team_size",
                "type": "single",
                "prompt": "How many people did they manage?",
                "required": True,
                "choices": ["None", "1–5", "6–15", "16–50", "More than 50"],
            },
            _rating("leadership", "How effective was their leadership?", "Ineffective", "Outstanding"),
            {
                "id": "strengths",
                "type": "multiple",
                "prompt": "Where were they strongest as a manager?",
                "help": "Tick all that apply.",
                "required": True,
                "choices": [
                    "Developing people",
                    "Setting direction",
                    "Delivering results",
                    "Handling conflict",
                    "Communicating change",
                    "Hiring",
                ],
            },
            {
                "id": "conflict",
                "type": "text",
                "prompt": "Describe how they handled a difficult situation in their team.",
                "required": False,
            },
            {"id": "develop", "type": "text", "prompt": "What could they do better as a manager?", "required": False},
            {"id": "rehire", "type": "yes_no", "prompt": "Would you want to work for them again?", "required": True},
        ],
    },
    "graduate": {
        "name": "Graduate / entry level",
        "description": "For early-career candidates, from a tutor, supervisor or first employer.",
        "questions": [
            {
                "id": "relationship",
                "type": "single",
                "prompt": "How do you know the candidate?",
                "required": True,
                "choices": ["Tutor or lecturer", "Supervisor at work", "Placement or internship", "Other"],
            },
            DATES,
            _rating("punctuality", "How punctual and dependable were they?", "Rarely", "Always"),
            _rating("learning", "How quickly did they learn new things?", "Slowly", "Very quickly"),
            {
                "id": "qualities",
                "type": "multiple",
                "prompt": "Which qualities did they show?",
                "help": "Tick all that apply.",
                "required": False,
                "choices": ["Teamwork", "Initiative", "Communication", "Attention to detail", "Problem solving"],
            },
            {"id": "strengths", "type": "text", "prompt": "What are their main strengths?", "required": True},
            {
                "id": "recommend",
                "type": "yes_no",
                "prompt": "Would you recommend them for an entry-level role?",
                "required": True,
            },
        ],
    },
    "executive": {
        "name": "Executive",
        "description": "For senior leadership: strategy, judgement, integrity and impact.",
        "questions": [
            RELATIONSHIP,
            DATES,
            {
                "id": "impact",
                "type": "text",
                "prompt": "What was their most significant contribution to the organisation?",
                "required": True,
            },
            {
                "id": "strategy",
                "type": "rating",
                "prompt": "How strong was their strategic thinking?",
                "required": True,
                "scale": {"min": 1, "max": 10, "low_label": "Weak", "high_label": "Exceptional"},
            },
            _rating("judgement", "How sound was their judgement under pressure?"),
            _rating("integrity", "How would you rate their integrity?", "Concerns", "Beyond question"),
            {
                "id": "stakeholders",
                "type": "single",
                "prompt": "How did they work with the board and senior stakeholders?",
                "required": False,
                "choices": ["Very effectively", "Effectively", "With some difficulty", "I did not see this"],
            },
            {"id": "develop", "type": "text", "prompt": "Where could they grow as a leader?", "required": False},
            {"id": "rehire", "type": "yes_no", "prompt": "Would you appoint them again?", "required": True},
        ],
    },
}

"""The survey's two forms (flask-wtf): who starts the survey, and one answer.

Each form checks its fields against the fixed patterns of `design` and says
what is wrong in the words a participant reads (Japanese / English). CSRF is
not checked here: the app's `CSRFProtect` checks every POST, these included.
"""

import re

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import AnyOf, ValidationError

from glcic_jax.survey import design, resume_codes

ID_RULE = (
    "参加者IDは英数字と _ - で1〜32文字です / "
    "the participant id must be 1-32 letters, digits, _ or -"
)
CODE_RULE = (
    "再開コードは8文字の英数字です (例 ABCD-EF23) / "
    "the resume code is 8 letters and digits, like ABCD-EF23"
)
UNKNOWN_AGE_BAND = "unknown age band"
UNKNOWN_QUESTION = "unknown question"
CHOICE_RULE = "choose one of 1..5 / 1〜5 から選んでください"
CHOICE_VALUES = [str(c) for c in design.CHOICES]


def _fullmatch(pattern: re.Pattern, message: str):
    """A validator of whole values: wtforms' Regexp anchors only the start."""

    def check(form, field):
        if not pattern.fullmatch(field.data or ""):
            raise ValidationError(message)

    return check


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _normalise_code(value):
    return resume_codes.normalise(value) if isinstance(value, str) else value


def _optional_code(form, field):
    if field.data and not resume_codes.CODE.fullmatch(field.data):
        raise ValidationError(CODE_RULE)


class _Form(FlaskForm):
    class Meta:
        csrf = False  # the app-wide CSRFProtect has checked the token before any view runs


class StartForm(_Form):
    """The start page: a participant id, an optional age band, and a resume code to continue.

    The code is needed only to continue an existing id in another browser.
    """

    participant = StringField(
        default="", filters=[_strip], validators=[_fullmatch(design.PARTICIPANT_ID, ID_RULE)]
    )
    code = StringField(default="", filters=[_normalise_code], validators=[_optional_code])
    age = StringField(default="", validators=[AnyOf(list(design.AGE_BANDS), UNKNOWN_AGE_BAND)])


class AnswerForm(_Form):
    """One answer: the question's id and the choice 1..5 as clicked."""

    question = StringField(
        default="", validators=[_fullmatch(design.QUESTION_ID, UNKNOWN_QUESTION)]
    )
    choice = StringField(default="", validators=[AnyOf(CHOICE_VALUES, CHOICE_RULE)])

    def __init__(self, survey: design.Survey, **kwargs):
        super().__init__(**kwargs)
        self.survey = survey

    def validate_question(self, field):
        if self.survey.question(field.data) is None:
            raise ValidationError(UNKNOWN_QUESTION)

    def first_error(self) -> str | None:
        """What is wrong, the question before the choice (as a participant reads the page)."""
        for field in (self.question, self.choice):
            if field.errors:
                return field.errors[0]
        return None

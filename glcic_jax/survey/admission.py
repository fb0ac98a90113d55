"""Who may start the survey as which participant: one per browser, resume codes, limits.

A browser's signed session holds at most one participant, the one it
registered or continued; asked to start as another id it is refused. A new id
gets a resume code; another browser continues an existing id only with that
code. A missing or wrong code, or a code with an unknown id, is refused with
one message that tells nothing about the participant. One client address
registers at most `new_ids_per_hour` new ids, and types at most
`WRONG_CODES_PER_ADDRESS_PER_HOUR` wrong codes, in any hour (counted in
memory; see `address_limits`).
"""

from glcic_jax.survey import address_limits, database, resume_codes

# A class or lab that takes the survey together is usually one room behind one
# NAT address: 30 people registering within an hour must all get in (so not 1).
# A script gets 30 ids an hour from one address instead of any number; a bigger
# session can raise it with `survey.py serve --new_ids_per_hour`.
NEW_IDS_PER_ADDRESS_PER_HOUR = 30
# A participant who continues on another device types the code once or twice;
# 20 wrong codes an hour leave a room plenty of typos, while guessing one code
# (31**8 possibilities, see resume_codes) would take millions of years.
WRONG_CODES_PER_ADDRESS_PER_HOUR = 20

RESUME_REFUSED = (
    "このIDは使用中か、再開コードが違います / this id is taken, or the resume code is wrong: "
    "to continue, enter your id with the code shown on your survey pages; "
    "to start, choose another id and leave the code empty"
)
TOO_MANY_NEW_IDS = (
    "このネットワークからの新しいIDが多すぎます。後でお試しください / "
    "too many new ids from your network in the last hour; please try again later"
)
TOO_MANY_WRONG_CODES = (
    "このネットワークからの誤った再開コードが多すぎます。後でお試しください / "
    "too many wrong resume codes from your network in the last hour; please try again later"
)


def already_participant(participant: str) -> str:
    """The refusal of a browser that holds `participant` and asked to start as another id."""
    return (
        f"このブラウザはすでに参加者 {participant} です / this browser is already participant "
        f"{participant}: one participant per browser"
    )


class Refused(Exception):
    """A start refused: the HTTP status (400 or 429) and the one line the start page shows."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Admission:
    """The start page's decisions for one server: its database and its per-address counts."""

    def __init__(self, db: database.SurveyDB, new_ids_per_hour: int = NEW_IDS_PER_ADDRESS_PER_HOUR):
        self.db = db
        self.new_ids = address_limits.AddressLimit(new_ids_per_hour)
        self.wrong_codes = address_limits.AddressLimit(WRONG_CODES_PER_ADDRESS_PER_HOUR)

    def admit(
        self, current: str | None, participant: str, code: str, age_band: str, address: str | None
    ) -> str | None:
        """Let a browser start as `participant`, registering the id if it is new.

        Args:
          current: the participant this browser's session already holds, or None.
          participant: the id typed (valid).
          code: the resume code typed (normalised and well-formed), or "".
          age_band: the age band chosen (valid), or "".
          address: the client's address, for the per-address limits.

        Returns:
          The resume code the session should now show, or None to keep its own.

        Raises:
          Refused: this browser may not start as `participant` now.
        """
        if current is not None and current != participant:
            raise Refused(429, already_participant(current))
        if current == participant:  # this browser's own participant: resumes without a code
            self.db.add_participant(participant, age_band)  # fills an age band left empty
            return None
        if code:  # an existing participant continuing in this browser
            if not self.wrong_codes.take(address):  # counted first: concurrent guesses count too
                raise Refused(429, TOO_MANY_WRONG_CODES)
            if not resume_codes.matches(code, self.db.resume_code_hash(participant)):
                raise Refused(400, RESUME_REFUSED)
            self.wrong_codes.give_back(address)  # the right code: no wrong one after all
            self.db.add_participant(participant, age_band)
            return code
        if self.db.has_participant(participant):
            raise Refused(400, RESUME_REFUSED)
        if not self.new_ids.take(address):
            raise Refused(429, TOO_MANY_NEW_IDS)
        code = resume_codes.new_code()
        if not self.db.register(participant, age_band, resume_codes.hash_code(code)):
            self.new_ids.give_back(address)  # taken meanwhile by a concurrent registration
            raise Refused(400, RESUME_REFUSED)
        return code

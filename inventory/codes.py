"""Product code rules: how a code is normalised and what a valid one looks like."""
import re

CODE_MAX_LENGTH = 64
_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._\-]*$")


def code_normalise(raw: str) -> str:
    return str(raw).strip().upper()


def code_is_valid(code: str) -> bool:
    return 0 < len(code) <= CODE_MAX_LENGTH and bool(_CODE_RE.match(code))

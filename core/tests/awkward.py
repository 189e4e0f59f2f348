"""Awkward input for the error-path tests: JSON values past the float range, with NUL, huge, empty or of the wrong type."""
import json

AWKWARD_VALUES = ["null", "true", "-1", "0", "1.5", "1e400", "-1e400", "1000000000000000000000000000000",
                  '""', '"' + "x" * 5000 + '"', '"A\\u0000"', "[]", "{}", '"2026-13-45"', '"\\ud83d\\udca5"']


def bodies_with_each_field_awkward(body: dict) -> list[str]:
    """JSON texts of ``body`` with each field replaced in turn by each awkward value, then bodies that are
    not objects or not JSON."""
    bodies = []
    for field in body:
        for value in AWKWARD_VALUES:
            marked = json.dumps({**body, field: "__AWKWARD__"})
            bodies.append(marked.replace('"__AWKWARD__"', value))
    return bodies + ["", "null", "[]", "{not json", '{"a": 1e400}']

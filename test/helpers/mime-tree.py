"""The MIME tree Python's email package reads from each message: a reference parser for
chatmail-filter's tests (test/unit/filter-headers.test.ts).

stdin: a JSON array of messages, base64. stdout: a JSON array, for each message an object with
its tree under the compat32 policy (what email.message_from_bytes uses by default) and under
the default policy (the newer header parser): {type, boundary, multipart, parts}.
"""

import base64
import email
import email.policy
import json
import sys


def tree(m):
    node = {
        "type": m.get_content_type(),
        "boundary": m.get_boundary(),
        "multipart": m.is_multipart(),
    }
    if m.is_multipart():
        node["parts"] = [tree(p) for p in m.get_payload()]
    return node


def read(raw, policy):
    try:
        return tree(email.message_from_bytes(raw, policy=policy))
    except Exception as e:  # a parser error counts as "not this structure"
        return {"error": repr(e)}


out = []
for b64 in json.load(sys.stdin):
    raw = base64.b64decode(b64)
    out.append(
        {
            "compat32": read(raw, email.policy.compat32),
            "default": read(raw, email.policy.default),
        }
    )
json.dump(out, sys.stdout)

#!/usr/bin/env python3
"""Prints the messages of a maildir (what aiosmtpd's Mailbox handler stored) as a JSON array,
oldest first, headers and body decoded: the escalation tests read e-mail tickets back.

usage: read_maildir.py MAILDIR
"""
import email.header
import email.policy
import json
import mailbox
import sys

box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = []
for key in box.keys():
    path = box._lookup(key)  # noqa: SLF001 - the file's mtime orders the messages
    with open(box._path + "/" + path, "rb") as f:  # noqa: SLF001
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    import os
    out.append({
        "mtime": os.stat(box._path + "/" + path).st_mtime_ns,  # noqa: SLF001
        "subject": str(msg["Subject"] or ""),
        "from": str(msg["From"] or ""),
        "to": str(msg["To"] or ""),
        "message_id": str(msg["Message-ID"] or ""),
        "in_reply_to": str(msg["In-Reply-To"] or ""),
        "body": msg.get_body(preferencelist=("plain",)).get_content(),
        # Attached files (the monthly report's PDF): name, type, size, first bytes.
        "attachments": [
            {
                "filename": part.get_filename() or "",
                "content_type": part.get_content_type(),
                "size": len(part.get_content()),
                "head": part.get_content()[:5].decode("latin-1"),
            }
            for part in msg.iter_attachments()
        ],
    })
out.sort(key=lambda m: m["mtime"])
print(json.dumps(out))

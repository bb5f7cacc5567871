"""aiosmtpd handler for sessiongate's mail tests: every message received over SMTP is written to
a directory as `<n>.eml` (the raw message, as the client sent it after DATA).

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c outbox.Outbox DIR

Files appear atomically (written under a temporary name, then renamed), so a reader never sees
half a message. Envelope senders and recipients are kept in `<n>.envelope` (one per line:
`from ...`, then `to ...`).
"""

import itertools
import os


class Outbox:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.counter = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("outbox.Outbox needs one argument: the directory to write messages to")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        base = os.path.join(self.directory, f"{n:05d}")
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(base + ".envelope.tmp", "w", encoding="utf-8") as f:
            f.write(f"from {envelope.mail_from}\n")
            for rcpt in envelope.rcpt_tos:
                f.write(f"to {rcpt}\n")
        os.rename(base + ".envelope.tmp", base + ".envelope")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(content)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"

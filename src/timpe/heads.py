"""The header lines of an HTTP head, parsed without the email package.

``http.client.parse_headers`` reads a head's lines and hands them to
``email.parser``, a feed parser built for mail: every request an app node
reads (gevent's pywsgi parses with it) and every answer of CrateDB (its
client reads them with http.client) goes through it. A head of plain
``Name: value`` lines, all HAProxy and CrateDB send, is split here
instead, into the same message class holding the same (name, value)
pairs as the email parser makes of it (the value from the first
non-blank after the colon to the line's end). Any other head (a folded
line, a line that names no field, a stray CR) goes to the email parser
as before, so both read every head alike (tests/test_heads.py).
"""
import email.parser
import http.client
import re

#: As http.client: the longest line and the most lines of a head.
MAX_LINE = 65536
MAX_HEADERS = 100

#: A field name as the email parser takes one: printable, no colon.
_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")


def read_lines(fp):
    """The head's lines up to and with its blank line (or the end of
    ``fp``), within http.client's limits and raising its errors."""
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return lines


def parse(fp, _class=http.client.HTTPMessage):
    """What ``http.client.parse_headers(fp, _class)`` returns, read from ``fp``."""
    lines = read_lines(fp)
    message = _class()
    for line in lines[:-1]:
        text = line.decode("iso-8859-1")
        text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
        name, colon, value = text.partition(":")
        # A CR within a line ends a line for the email parser too.
        if not colon or "\r" in text or _NAME.fullmatch(name) is None:
            whole = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=_class).parsestr(whole)
        message[name] = value.lstrip(" \t")
    message.set_payload("")
    return message

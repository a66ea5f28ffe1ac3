"""timpe.heads reads every head as http.client's parse_headers does."""
import http.client
import io

import pytest
from gevent.pywsgi import OldMessage

from timpe import heads

HEADS = [
    # plain: what HAProxy and CrateDB send
    b"Host: 127.0.0.1:9100\r\nContent-Type: application/json\r\nContent-Length: 52\r\n\r\n",
    b"content-type: application/json; charset=UTF-8\r\ncontent-length: 1234\r\n\r\n",
    b"\r\n",
    b"",
    b"X-A:no space\r\nX-B:\t tabbed and spaced \r\nX-Empty:\r\nX-Empty2: \r\n\r\n",
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Colons: a:b:c\r\n\r\n",
    b"X-Latin: caf\xe9\r\nX-Bare-Lf: yes\n\n",
    b"X-End-Of-Input: no blank line\r\n",
    # not plain: each takes the email parser's way
    b"X-Folded: first\r\n second\r\n\tthird\r\nX-After: 1\r\n\r\n",
    b"No colon here\r\nX-After: 1\r\n\r\n",
    b": no name\r\nX-After: 1\r\n\r\n",
    b"Bad Name: value\r\nX-After: 1\r\n\r\n",
    b"From someone\r\nX-After: 1\r\n\r\n",
    b" leading-fold: x\r\n\r\n",
    b"X-Cr: value\r\r\n\r\n",
    b"X-Cr: val\rue\r\nX-After: 1\r\n\r\n",
    b"X-Cr: value\r\n\r\r\n",
]


def both(head, cls=http.client.HTTPMessage):
    return (heads.parse(io.BytesIO(head + b"BODY"), cls),
            http.client.parse_headers(io.BytesIO(head + b"BODY"), cls))


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("cls", [http.client.HTTPMessage, OldMessage])
def test_a_head_reads_as_http_client_reads_it(head, cls):
    ours, theirs = both(head, cls)
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items()
    assert ours.get_payload() == theirs.get_payload()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
    assert ours.get_content_type() == theirs.get_content_type()


def test_the_body_is_left_to_read():
    fp = io.BytesIO(HEADS[0] + b"BODY")
    heads.parse(fp)
    assert fp.read() == b"BODY"


def test_the_limits_are_http_client_s():
    with pytest.raises(http.client.LineTooLong):
        heads.parse(io.BytesIO(b"X-Long: " + b"a" * heads.MAX_LINE + b"\r\n\r\n"))
    for count in (heads.MAX_HEADERS - 1, heads.MAX_HEADERS):
        head = b"".join(b"X-%d: 1\r\n" % i for i in range(count)) + b"\r\n"
        try:
            theirs = http.client.parse_headers(io.BytesIO(head)).items()
        except http.client.HTTPException as exc:
            with pytest.raises(type(exc), match=str(exc)):
                heads.parse(io.BytesIO(head))
        else:
            assert heads.parse(io.BytesIO(head)).items() == theirs

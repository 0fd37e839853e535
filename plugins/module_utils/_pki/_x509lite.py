# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: read a certificate's subject and validity
without ``cryptography``.

Nodes often lack the ``cryptography`` library; the expiry report only needs
notAfter and the subject, which a few lines of DER walking provide. No
signature is checked here: this is for reporting, never for trust decisions.
"""

from __future__ import annotations

import base64
import datetime
import re

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
_OIDS = {"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST"}


class LiteCert:
    """The few fields the expiry report needs, with cryptography's names."""

    def __init__(self, subject, not_before, not_after):
        self.subject_text = subject
        self.not_valid_before_utc = not_before
        self.not_valid_after_utc = not_after


def _tlv(data, pos):
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data, start, end):
    pos = start
    while pos < end:
        tag, body, nxt = _tlv(data, pos)
        yield tag, body, nxt
        pos = nxt


def _oid(raw):
    first = raw[0]
    parts = [first // 40, first % 40]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _time(tag, raw):
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = str(1900 + year if year >= 50 else 2000 + year) + text[2:]
    return datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _name(data, start, end):
    parts = []
    for _unused, rdn_body, rdn_end in _children(data, start, end):  # SET
        for _unused, atv_body, atv_end in _children(data, rdn_body, rdn_end):  # SEQUENCE
            (_unused, oid_body, oid_end), (_unused, val_body, val_end) = list(_children(data, atv_body, atv_end))[:2]
            key = _OIDS.get(_oid(data[oid_body:oid_end]), _oid(data[oid_body:oid_end]))
            parts.append(f"{key}={data[val_body:val_end].decode('utf-8', 'replace')}")
    return ",".join(reversed(parts))


def load_pem(data):
    """Parse the first PEM certificate of ``data``; raise ValueError when there is none."""
    match = _PEM.search(data)
    if not match:
        raise ValueError("no PEM certificate")
    der = base64.b64decode(b"".join(match.group(1).split()))
    try:
        _unused, cert_body, cert_end = _tlv(der, 0)
        _unused, tbs_body, tbs_end = next(_children(der, cert_body, cert_end))
        fields = list(_children(der, tbs_body, tbs_end))
        if fields[0][0] == 0xA0:  # explicit version
            fields = fields[1:]
        # serial, signature, issuer, validity, subject
        _unused, val_body, val_end = fields[3]
        (t1, b1, e1), (t2, b2, e2) = list(_children(der, val_body, val_end))
        subject = _name(der, fields[4][1], fields[4][2])
        return LiteCert(subject, _time(t1, der[b1:e1]), _time(t2, der[b2:e2]))
    except (IndexError, StopIteration, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed certificate: {exc}") from None

# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the Kubernetes object-name shapes (RFC 1123), the one copy of them in the collection.

A *label* names a namespace, a node agent or an authorizer; a *subdomain* (dot-separated labels, at most 253
characters) names a node, a cluster or a resource. Both take only lower-case letters, digits and '-', and neither
starts nor ends with '-'. A value that is not a string never matches, nor does a list that Ansible's argument spec
turned into the string "['x']".
"""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
LABEL = re.compile(_LABEL)
SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_HOST_LABEL = re.compile(_LABEL, re.IGNORECASE)
LABEL_HINT = "lower-case letters, digits and '-', at most 63, like kube-system"


def is_label(value):
    """True for a DNS-1123 label: at most 63 characters."""
    return isinstance(value, str) and LABEL.fullmatch(value) is not None


def is_subdomain(value):
    """True for a DNS-1123 subdomain: labels joined by dots, at most 253 characters."""
    return isinstance(value, str) and len(value) <= 253 and SUBDOMAIN.fullmatch(value) is not None


def is_host_name(value):
    """True for a host name as ssh and DNS take it: labels of any case joined by dots, a trailing dot allowed, and a
    last label that is not all digits (that would be an IPv4 address)."""
    if not isinstance(value, str) or not value:
        return False
    labels = value.removesuffix(".").split(".")
    return all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()

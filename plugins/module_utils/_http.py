# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: one HTTP(S) request from a node, standard library only.

What ``urllib.request``'s module-level opener does, with the TLS context of the
call (a client certificate, a CA, or none for a loopback liveness probe).
module_utils stays Ansible-free, so this is not ``ansible.module_utils.urls``.
"""

from __future__ import annotations

import urllib.request


def http_open(request, timeout, context=None):
    """Open ``request`` (a URL or a Request) with ``context`` for https; the caller closes the response."""
    handlers = [urllib.request.HTTPSHandler(context=context)] if context is not None else []
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout)

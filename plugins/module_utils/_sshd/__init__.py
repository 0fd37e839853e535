# Private to the kubeguard.hardening collection: no stable API.

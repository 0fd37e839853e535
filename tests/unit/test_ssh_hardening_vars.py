"""ssh_hardening's derived host-key lists, rendered as a play renders them: the file loaded by Ansible's own
loader and templated by ansible-core's templar, so a quoting slip in a folded scalar shows here."""

import pathlib

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

VARS = pathlib.Path(__file__).resolve().parents[2] / "roles/ssh_hardening/vars/main.yml"


def render(name, facts, **extra):
    loader = DataLoader()
    variables = {**loader.load_from_file(str(VARS)), "ssh_hardening_facts_result": facts, **extra}
    # a play trusts its role's vars files as templates; the loader alone does not
    templar = Templar(
        loader=loader, variables={k: trust_as_template(v) if isinstance(v, str) else v for k, v in variables.items()}
    )
    return templar.template(trust_as_template(variables[name]))


def test_kept_host_keys_are_named_by_type_and_weak_rsa_is_not_kept():
    facts = {
        "host_keys": [
            {"path": "/etc/ssh/ssh_host_ed25519_key", "type": "ssh-ed25519", "bits": 256},
            {"path": "/etc/ssh/ssh_host_ecdsa_key", "type": "ecdsa-sha2-nistp256", "bits": 256},
            {"path": "/etc/ssh/ssh_host_rsa_key", "type": "ssh-rsa", "bits": 2048},
        ]
    }
    kept = render(
        "ssh_hardening_host_keys_kept",
        facts,
        ssh_hardening_host_key_types=["ed25519", "rsa"],
        ssh_hardening_host_key_rsa_min_bits=3072,
    )
    assert list(kept) == ["ed25519", "ecdsa"]

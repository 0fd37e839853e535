#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_config
short_description: Render, validate, access-check and atomically write sshd_config, arming a rollback
version_added: 0.1.0
description:
  - Selects KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms and PubkeyAcceptedAlgorithms from preference
    lists and the algorithms the node supports, so no unknown algorithm is ever written.
  - Renders the main sshd_config with the hardened settings before the C(Include) of the drop-in
    directory (sshd keeps the first value it reads, so drop-ins cannot override them), then Match blocks.
  - Validates the candidate with C(sshd -t) and evaluates it with C(sshd -T -C user=,host=,addr=,lport=)
    for the connection Ansible uses; refuses (before anything is written) when that account would lose
    access, naming the role variable to fix.
  - When the file changes, keeps a backup, copies the previous file to I(state_dir) and arms a dead-man
    rollback (C(systemd-run --on-active)) that restores it and reloads sshd unless disarmed.
author:
  - kubeguard maintainers
options:
  path:
    description: Main sshd configuration file.
    type: path
    default: /etc/ssh/sshd_config
  header:
    description: Comment block written first (the role passes C(ansible_managed | comment)).
    type: str
    default: ''
  settings:
    description: Ordered mapping of sshd keywords to values (bool -> yes/no, list -> joined or one line per item).
    type: dict
    required: true
  algorithm_preferences:
    description:
      - Preference lists keyed by C(kex), C(ciphers), C(macs), C(host_key_algorithms), C(pubkey_accepted_algorithms).
    type: dict
    default: {}
  post_quantum_only:
    description: Drop classical KEX when the node supports a post-quantum hybrid.
    type: bool
    default: true
  supported_algorithms:
    description: C(algorithms) as returned by M(kubeguard.hardening.sshd_facts).
    type: dict
    required: true
  keywords:
    description: C(keywords) from M(kubeguard.hardening.sshd_facts); version-dependent keywords not in it are skipped.
    type: list
    elements: str
    default: []
  include:
    description: Include pattern written after the hardened settings; empty to omit.
    type: str
    default: /etc/ssh/sshd_config.d/*.conf
  match_blocks:
    description: List of C({criteria, settings}) Match blocks written last.
    type: list
    elements: dict
    default: []
  account:
    description: C(account) from M(kubeguard.hardening.sshd_facts) (name, uid, home, groups).
    type: dict
    required: true
  connection:
    description: C(connection) from M(kubeguard.hardening.sshd_facts) (addr, host, lport).
    type: dict
    default: {}
  access_check:
    description: Refuse a candidate under which I(account) would lose access.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of the previous file next to it.
    type: bool
    default: true
  rollback_timeout:
    description: Seconds after which the armed rollback restores the previous file; C(0) arms nothing.
    type: int
    default: 90
  state_dir:
    description: Directory for the rollback copy, script and log.
    type: path
    default: /var/lib/kubeguard/ssh_hardening
  service:
    description: Service unit name used by the rollback to reload sshd.
    type: str
    default: ssh
  socket_dropin:
    description:
      - The role's ssh.socket listen drop-in; the rollback restores (or removes) it too.
      - Defaults to C(/etc/systemd/system/<service>.socket.d/kubeguard-listen.conf).
    type: path
attributes:
  check_mode:
    support: full
    details: Renders, validates and access-checks; writes and arms nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
  safe_file_operations:
    support: full
"""

EXAMPLES = r"""
- name: Write the hardened sshd_config
  kubeguard.hardening.sshd_config:
    settings:
      PermitRootLogin: false
      PasswordAuthentication: false
    algorithm_preferences:
      kex: [mlkem768x25519-sha256, sntrup761x25519-sha512, curve25519-sha256]
      macs: [hmac-sha2-512-etm@openssh.com, hmac-sha2-256-etm@openssh.com]
    supported_algorithms: "{{ ssh_hardening_facts.algorithms }}"
    keywords: "{{ ssh_hardening_facts.keywords }}"
    account: "{{ ssh_hardening_facts.account }}"
    connection: "{{ ssh_hardening_facts.connection }}"
    rollback_timeout: 90
  become: true
  register: ssh_hardening_config
"""

RETURN = r"""
algorithms:
  description: Selected algorithms per sshd keyword.
  returned: success
  type: dict
  sample: {"KexAlgorithms": ["mlkem768x25519-sha256", "sntrup761x25519-sha512"]}
skipped_keywords:
  description: Version-dependent keywords left out because this sshd does not know them.
  returned: success
  type: list
  elements: str
  sample: [PerSourcePenalties]
shadowed:
  description: Drop-in settings that the hardened settings override (they can no longer take effect).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/etc/ssh/sshd_config.d/50-cloud-init.conf", "keyword": "passwordauthentication", "value": "yes"}]
effective:
  description: Effective configuration of the candidate for the Ansible connection (C(sshd -T -C ...)).
  returned: success
  type: dict
  sample: {"passwordauthentication": ["no"]}
backup_file:
  description: Backup of the previous file.
  returned: changed and backup enabled
  type: str
  sample: /etc/ssh/sshd_config.12345.2026-11-27@04:00:00~
rollback:
  description: Dead-man rollback state (armed, unit, timeout, script, previous copy).
  returned: success
  type: dict
  sample: {"armed": true, "unit": "kubeguard-ssh-rollback", "timeout": 90}
"""

import glob
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils import _files
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import access, algorithms, config, node
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd.errors import SshdHardeningError

UNIT = "kubeguard-ssh-rollback"
RESTORE = """#!/bin/sh
# kubeguard.hardening ssh_hardening dead-man rollback: restores {path} and reloads sshd.
systemctl stop '{unit}.timer' 2>/dev/null
cp -p '{previous}' '{path}'
if [ -f '{state_dir}/socket-dropin.previous' ]; then
  cp -p '{state_dir}/socket-dropin.previous' '{dropin}'
elif [ -f '{state_dir}/socket-dropin.absent' ]; then
  rm -f '{dropin}'
fi
systemctl daemon-reload
if systemctl is-enabled --quiet '{service}.socket' 2>/dev/null || systemctl is-active --quiet '{service}.socket'; then
  # Socket activation: the socket owns the ports and starts sshd on demand;
  # restarting it applies listen changes, running sessions survive.
  systemctl stop '{service}.service'
  systemctl restart '{service}.socket'
else
  systemctl reload-or-restart '{service}.service'
fi
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) restored {path} from {previous}" >> '{state_dir}/rollback.log'
logger -t {unit} "restored {path} from {previous}" || true
"""


def sshd(module, args):
    rc, out, err = module.run_command(["sshd", *args])
    if rc != 0:
        msg = f"The candidate sshd_config is invalid (sshd {args[0]}): {' '.join(err.split())}"
        raise SshdHardeningError(msg, option=config.option_for_error(err))
    return out


def candidate_effective(module, content):
    p = module.params
    fd, tmp = tempfile.mkstemp(prefix="sshd_config.", dir=module.tmpdir)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    conn, acct = p["connection"], p["account"]
    addr = conn.get("addr") or "127.0.0.1"
    spec = f"user={acct['name']},host={conn.get('host') or addr},addr={addr}"
    if conn.get("lport"):
        spec += f",lport={conn['lport']}"
    sshd(module, ["-t", "-f", tmp])
    return config.parse_effective(sshd(module, ["-T", "-f", tmp, "-C", spec]))


def arm_rollback(module, current):
    p = module.params
    os.makedirs(p["state_dir"], mode=0o700, exist_ok=True)
    previous = os.path.join(p["state_dir"], "sshd_config.previous")
    with open(previous, "w") as handle:
        handle.write(current)
    os.chmod(previous, 0o600)
    dropin = p["socket_dropin"] or f"/etc/systemd/system/{p['service']}.socket.d/kubeguard-listen.conf"
    for name in ("socket-dropin.previous", "socket-dropin.absent"):
        if os.path.exists(os.path.join(p["state_dir"], name)):
            os.unlink(os.path.join(p["state_dir"], name))
    if os.path.exists(dropin):
        shutil.copy2(dropin, os.path.join(p["state_dir"], "socket-dropin.previous"))
    else:
        open(os.path.join(p["state_dir"], "socket-dropin.absent"), "w").close()
    script = os.path.join(p["state_dir"], "rollback.sh")
    with open(script, "w") as handle:
        handle.write(
            RESTORE.format(
                path=p["path"],
                previous=previous,
                service=p["service"],
                state_dir=p["state_dir"],
                unit=UNIT,
                dropin=dropin,
            )
        )
    os.chmod(script, 0o700)
    module.run_command(["systemctl", "stop", f"{UNIT}.timer", f"{UNIT}.service"])
    module.run_command(["systemctl", "reset-failed", f"{UNIT}.timer", f"{UNIT}.service"])
    rc, _, err = module.run_command(
        [
            "systemd-run",
            f"--unit={UNIT}",
            "--description=kubeguard ssh_hardening dead-man rollback",
            f"--on-active={p['rollback_timeout']}s",
            "--timer-property=AccuracySec=1s",
            "/bin/sh",
            script,
        ]
    )
    if rc != 0:
        msg = f"Cannot arm the rollback timer: {err.strip()}"
        raise SshdHardeningError(msg, option="ssh_hardening_rollback_timeout")
    return {"armed": True, "unit": UNIT, "timeout": p["rollback_timeout"], "script": script, "previous": previous}


def write(module, content):
    _files.atomic_write(module.params["path"], content.encode(), 0o600, replace=module.atomic_move)


def run(module):
    p = module.params
    selected = algorithms.select_all(p["algorithm_preferences"], p["supported_algorithms"], p["post_quantum_only"])
    settings, skipped = config.drop_unsupported(p["settings"], set(p["keywords"]))
    settings.update(selected)
    content = config.render(settings, p["header"], p["include"] or None, p["match_blocks"])
    try:
        with open(p["path"]) as handle:
            current = handle.read()
    except FileNotFoundError:
        current = ""

    effective = candidate_effective(module, content)
    if p["access_check"]:
        acct = dict(p["account"])
        files = node.expand_authorized_keys_files(
            config.first(effective, "authorizedkeysfile"), acct["name"], acct["home"], acct["uid"]
        )
        acct["key_types"] = node.read_key_types(files)
        problems = access.check(effective, acct, p["connection"])
        if problems:
            reasons = [msg if var in msg else f"{msg} (set {var})" for msg, var in problems]
            raise SshdHardeningError("Refusing to change sshd: " + "; ".join(reasons), option=problems[0][1])

    dropins = {}
    for pattern in [p["include"]] if p["include"] else []:
        for path in sorted(glob.glob(pattern)):
            with open(path, errors="replace") as handle:
                dropins[path] = config.parse_dropin(handle.read())

    result = {
        "changed": content != current,
        "algorithms": selected,
        "skipped_keywords": skipped,
        "shadowed": config.shadowed(dropins, settings),
        "effective": effective,
        "rollback": {"armed": False, "unit": UNIT, "timeout": p["rollback_timeout"]},
    }
    if module._diff:
        result["diff"] = {"before": current, "after": content, "before_header": p["path"], "after_header": p["path"]}
    if result["changed"] and not module.check_mode:
        if p["backup"] and current:
            result["backup_file"] = module.backup_local(p["path"])
        if p["rollback_timeout"] > 0 and current:
            result["rollback"] = arm_rollback(module, current)
        write(module, content)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/ssh/sshd_config"},
            "header": {"type": "str", "default": ""},
            "settings": {"type": "dict", "required": True},
            "algorithm_preferences": {"type": "dict", "default": {}},
            "post_quantum_only": {"type": "bool", "default": True},
            "supported_algorithms": {"type": "dict", "required": True},
            "keywords": {"type": "list", "elements": "str", "default": []},
            "include": {"type": "str", "default": "/etc/ssh/sshd_config.d/*.conf"},
            "match_blocks": {"type": "list", "elements": "dict", "default": []},
            "account": {"type": "dict", "required": True},
            "connection": {"type": "dict", "default": {}},
            "access_check": {"type": "bool", "default": True},
            "backup": {"type": "bool", "default": True},
            "rollback_timeout": {"type": "int", "default": 90},
            "state_dir": {"type": "path", "default": "/var/lib/kubeguard/ssh_hardening"},
            "service": {"type": "str", "default": "ssh"},
            "socket_dropin": {"type": "path"},
        },
        supports_check_mode=True,
    )
    if not shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        module.fail_json(msg="sshd not found; install openssh-server")
    try:
        result = run(module)
    except SshdHardeningError as exc:
        msg = str(exc) if not exc.option or exc.option in str(exc) else f"{exc} (set {exc.option})"
        module.fail_json(msg=msg, option=exc.option)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

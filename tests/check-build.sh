#!/usr/bin/env bash
# Builds the Galaxy tarball, checks that no lab, test or cache artefact is in
# it, installs it into a scratch collections path and loads every module's
# and role's documentation from that installed copy.
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: tests/check-build.sh (no arguments)" >&2; exit 2; }
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
ansible-galaxy collection build --force --output-path "$scratch" >/dev/null
tarball=$(ls "$scratch"/kubeguard-hardening-*.tar.gz)
if tar -tzf "$tarball" | grep -E '^(lab|tests|molecule|bench|\.lab[^/]*|\.venv|\.ci|\.collections)(/|$)|__pycache__'; then
  echo "check-build: the tarball above contains lab/test/cache files" >&2
  exit 1
fi
# Install and load from the installed copy only, never from this checkout.
cd "$scratch"
touch "$scratch/ansible.cfg"
export ANSIBLE_CONFIG="$scratch/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$scratch/installed"
ansible-galaxy collection install --force --no-deps -p "$scratch/installed" "$tarball" >/dev/null
loads() { # type name marker: ansible-doc must load it from the installed tarball
  ansible-doc --json -t "$1" "kubeguard.hardening.$2" 2>/dev/null | grep -q "\"$3\"" ||
    { echo "check-build: ansible-doc cannot load $1 kubeguard.hardening.$2 from the tarball" >&2; exit 1; }
}
modules=$(tar -tzf "$tarball" | sed -n 's#^plugins/modules/\([a-z0-9_]*\)\.py$#\1#p')
for module in $modules; do loads module "$module" doc; done
roles=$(tar -tzf "$tarball" | sed -n 's#^roles/\([a-z0-9_]*\)/meta/argument_specs.yml$#\1#p')
for role in $roles; do loads role "$role" entry_points; done
echo "check-build: $(basename "$tarball") ok ($(tar -tzf "$tarball" | wc -l) files)"
echo "  modules: $(echo $modules)"
echo "  roles:   $(echo $roles)"

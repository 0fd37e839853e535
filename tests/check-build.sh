#!/usr/bin/env bash
# Builds the Galaxy tarball, checks that no lab, test or cache artefact is in
# it, installs it into a scratch collections path and loads its modules'
# documentation from there.
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: tests/check-build.sh (no arguments)" >&2; exit 2; }
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
ansible-galaxy collection build --force --output-path "$scratch" >/dev/null
tarball=$(ls "$scratch"/kubeguard-hardening-*.tar.gz)
if tar -tzf "$tarball" | grep -E '^(lab|tests|molecule|bench|\.lab|\.venv|\.ci|\.collections)(/|$)|__pycache__'; then
  echo "check-build: the tarball above contains lab/test/cache files" >&2
  exit 1
fi
ansible-galaxy collection install --no-deps -p "$scratch/installed" "$tarball" >/dev/null
export ANSIBLE_COLLECTIONS_PATH="$scratch/installed"
modules=$(tar -tzf "$tarball" | sed -n 's#^plugins/modules/\([a-z_]*\)\.py$#\1#p')
for module in $modules; do
  ansible-doc -t module "kubeguard.hardening.$module" >/dev/null
done
roles=$(tar -tzf "$tarball" | sed -n 's#^roles/\([a-z_]*\)/meta/argument_specs.yml$#\1#p')
for role in $roles; do
  ansible-doc -t role "kubeguard.hardening.$role" >/dev/null
done
echo "check-build: $(basename "$tarball") ok ($(tar -tzf "$tarball" | wc -l) files; modules: ${modules//$'\n'/ }; roles: ${roles//$'\n'/ })"

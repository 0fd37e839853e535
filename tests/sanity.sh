#!/usr/bin/env bash
# Runs `ansible-test sanity` offline, with no ignore file, on what ships: the
# Galaxy tarball's content (galaxy.yml build_ignore drops lab/, tests/, bench/,
# molecule/), as Galaxy and Automation Hub certification run it. The rest of the
# checkout is linted by ruff and yamllint (make lint).
#
# ansible-test wants the collection at .../ansible_collections/kubeguard/hardening
# outside any other git tree, and creates one virtualenv per sanity test by
# downloading a pip bootstrap and the packages it pins. Offline, we give it
# those virtualenvs ready-made (the marker file tells it they are complete):
# each sees the packages requirements.txt pinned into .venv, except the import
# test's, which gets only what ansible-test itself installs there (PyYAML,
# Jinja2, MarkupSafe).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH="$repo/.venv/bin:$PATH"
venv_site=$("$repo/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export HOME="$repo/.cache/ansible-test-home" # ansible-test keeps its virtualenvs under ~/.ansible/test
mkdir -p "$HOME"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tree="$scratch/ansible_collections/kubeguard/hardening"
mkdir -p "$tree"
ansible-galaxy collection build --force --output-path "$scratch" >/dev/null
tar -xzf "$scratch"/kubeguard-hardening-*.tar.gz -C "$tree"
rm "$scratch"/kubeguard-hardening-*.tar.gz
cd "$tree"
base_python=$("$repo/.venv/bin/python" -c 'import sys; print(sys._base_executable)')
# --explain -v prints the virtualenv each test would create without creating it.
ansible-test sanity --prime-venvs --explain -v --python 3.11 2>&1 |
  sed -n 's/^Created Python 3.11 virtual environment using "venv": //p' | sort -u |
  while read -r venv; do
    [ -e "$venv/marker.txt" ] && continue
    "$base_python" -m venv --without-pip "$venv"
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    case "$venv" in
      */sanity.import*)
        for pkg in yaml _yaml jinja2 markupsafe; do
          if [ -e "$venv_site/$pkg" ]; then ln -sfn "$venv_site/$pkg" "$site/$pkg"; fi
        done ;;
      *) echo "$venv_site" >"$site/kubeguard-venv.pth" ;;
    esac
    # What ansible-test records after its own install: does PyYAML have libyaml?
    "$venv/bin/python" -c 'import json
try:
    import yaml
    print(json.dumps(hasattr(yaml, "CLoader")))
except ImportError:
    print("null")' >"$venv/meta.yaml.json"
    touch "$venv/marker.txt"
  done
# The import venvs also get the packages' metadata (dist-info), which
# ansible-core looks up when the controller plugins (action, lookup) are
# imported; refreshed on every run, so venvs made before this line get it too.
for venv in "$HOME"/.ansible/test/venv/sanity.import*/*/*/; do
  [ -e "$venv/marker.txt" ] || continue
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for meta in "$venv_site"/jinja2-*.dist-info "$venv_site"/markupsafe-*.dist-info "$venv_site"/pyyaml-*.dist-info \
    "$venv_site"/PyYAML-*.dist-info; do
    if [ -e "$meta" ]; then ln -sfn "$meta" "$site/$(basename "$meta")"; fi
  done
done
ansible-test sanity --python 3.11 --color no "$@"

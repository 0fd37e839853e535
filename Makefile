# The two contract commands are `make demo` and `make test`; everything else
# is a step of theirs. All installs come from files in this repository.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON ?= python3
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Ansible, ansible-lint and Molecule keep their state in the checkout: a
# collection another checkout installed into ~/.ansible must never shadow this one.
export ANSIBLE_HOME := $(CURDIR)/.ansible
export PATH := $(BIN):$(PATH)
LAYOUT ?= hardway
STAMP := $(VENV)/.installed

.PHONY: help venv host-deps lab lab-down demo test test-ha lint unit integration molecule molecule-cluster molecule-kind test-ca-rotation test-ha-upgrade build ee

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	mkdir -p .collections/ansible_collections/kubeguard
	ln -sfn $(CURDIR) .collections/ansible_collections/kubeguard/hardening
	touch $@

venv: $(STAMP) ## Create .venv from requirements.txt and link the collection

host-deps: ## Install the lab's Debian packages (root)
	lab/bin/host-deps

lab: host-deps venv ## Bring up the lab (LAYOUT=hardway|kubeadm|kubeadm-ha, LAB_ID=0-99)
	LAYOUT=$(LAYOUT) lab/bin/lab-up

lab-down: ## Remove this lab instance's containers, volumes, network and state
	lab/bin/lab-down

demo: lab ## Set up everything, harden the lab with site.yml, show the result
	lab/bin/demo

lint: venv ## yamllint, ansible-lint (production), ruff, galaxy build, ansible-test sanity, changelog lint
	yamllint --strict .
	ruff check .
	ruff format --check .
	ansible-lint --offline
	tests/check-build.sh
	tests/sanity.sh
	antsibull-changelog lint

unit: venv ## Unit tests (pure logic, no lab)
	pytest -q tests/unit

integration: host-deps venv ## Integration tests: a fresh lab's stream and the loopback stream, side by side
	lab/bin/fetch-idp >/dev/null
	LAYOUT=$(LAYOUT) tests/run-integration

molecule: venv host-deps ## The Molecule scenarios but cluster, two at a time (podman driver, lab images)
	lab/bin/build-images >/dev/null
	tests/run-molecule

molecule-cluster: venv host-deps ## Molecule's cluster scenario: a lab cluster, site.yml, rerun, verify (MOLECULE_CLUSTER_LAB_ID, default 8)
	tests/run-molecule cluster

molecule-kind: venv host-deps ## Molecule's kind scenario: real kind (podman), a node image built locally, kubelet.yml + audit.yml, rerun, verify
	tests/run-molecule kind

ROTATION_LAB = LAB_ID=$${ROTATION_LAB_ID:-7} LAB_STATE=$(CURDIR)/.lab-rotation
test-ca-rotation: venv host-deps ## The CA rotation proofs on a fresh lab of its own: site.yml, then ca, sa, front-proxy-ca, etcd-ca (~50 min; ROTATION_LAB_ID, default 7)
	lab/bin/build-images >/dev/null
	$(ROTATION_LAB) LAB_FRESH=1 lab/bin/lab-up
	$(ROTATION_LAB) pytest -q -rA -m lab tests/integration/test_50_site.py tests/integration/test_cluster_ca_rotation.py \
	  tests/integration/test_cluster_sa_rotation.py tests/integration/test_cluster_front_proxy_rotation.py \
	  tests/integration/test_cluster_etcd_ca_rotation.py; \
	  status=$$?; $(ROTATION_LAB) lab/bin/lab-down; exit $$status

HA_UPGRADE_LAB = LAB_ID=$${HA_UPGRADE_LAB_ID:-6} LAB_STATE=$(CURDIR)/.lab-ha-upgrade LAYOUT=kubeadm-ha
test-ha-upgrade: venv host-deps ## The kubeadm-ha proofs kept out of make test: site.yml, the encryption rotation killed midway, an etcd member frozen mid-roll and a play killed while one restarts, a play killed with a server drained healed by a rerun, a kubeadm manifest rewrite undone by a rerun, the cluster CA, then the etcd CA, front-proxy CA and SA key rotated under load and killed midway (~115 min; HA_UPGRADE_LAB_ID, default 6)
	lab/bin/build-images >/dev/null
	$(HA_UPGRADE_LAB) LAB_FRESH=1 lab/bin/lab-up
	$(HA_UPGRADE_LAB) pytest -q -rA -m ha tests/integration/test_ha_site.py \
	  tests/integration/test_ha_zz_encryption_rotation.py tests/integration/test_ha_zz_etcd_member_down.py \
	  tests/integration/test_ha_zz_kubeadm_ops.py tests/integration/test_ha_zz_ca_rotation.py \
	  tests/integration/test_ha_zz_other_ca_rotation.py tests/integration/test_ha_zz_lb_heal.py; \
	  status=$$?; $(HA_UPGRADE_LAB) lab/bin/lab-down; exit $$status

test: venv host-deps ## Everything but the kubeadm-ha stream: unit and lint beside the integration streams and Molecule
	lab/bin/build-images >/dev/null
	lab/bin/fetch-idp >/dev/null
	LAYOUT=$(LAYOUT) WITH_MOLECULE=1 WITH_CHECKS=1 tests/run-integration

test-ha: venv host-deps ## The kubeadm-ha stream: a fresh HA lab of its own, site.yml under load and the HA proofs (~20 min; HA_LAB_ID, default 9). .ci/run runs it after make test
	lab/bin/build-images >/dev/null
	tests/run-integration ha

build: venv ## Build the Galaxy tarball
	ansible-galaxy collection build --force

ee: venv host-deps ## Build the execution environment image for AWX/AAP (docs/awx.md; cached)
	lab/bin/build-ee

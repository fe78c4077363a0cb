# kvm_providers: the two commands of the README are `make run` and `make test`.
# Everything they need is installed here (apt packages as root, the virtualenv,
# the package), so both work on a fresh Debian 12 machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
LISTEN ?= 127.0.0.1:5988
LIBVIRT_URI ?= test:///default
PYTEST_ARGS ?=

# Debian packages: to build libvirt-python and run the server ...
APT_RUN := libvirt-dev pkg-config gcc python3-dev python3-venv libvirt0
# ... and for the tests: real clients, libvirt daemons, QEMU for TCG guests (with a
# kernel and busybox for a tiny guest OS: tests/fixtures/tinyos.py),
# the Debian and RPM packaging tools.
APT_TEST := sblim-wbemcli libvirt-daemon libvirt-daemon-driver-qemu \
	libvirt-daemon-driver-lxc libvirt-clients qemu-system-x86 qemu-utils \
	libvirt-daemon-system libvirt-daemon-config-nwfilter \
	openssl iproute2 dpkg-dev debhelper dh-python python3-all python3-setuptools \
	python3-libvirt python3-lxml rpm \
	linux-image-cloud-amd64 busybox-static ovmf \
	python3-ply python3-yaml python3-requests python3-urllib3 python3-certifi \
	python3-idna python3-typing-extensions python3-prometheus-client \
	chromium chromium-driver
# (libvirt-daemon-system and libvirt-daemon-config-nwfilter: the private privileged
# libvirtds of tests/filters and tests/migration, tests/fixtures/privileged_libvirtd.py:
# their QEMU driver does not start without the user and group libvirt-qemu, which
# libvirt-daemon-system creates, and the filter tests start from the filters that
# libvirt-daemon-config-nwfilter ships in /usr/share/libvirt/nwfilter;
# ovmf: the UEFI firmware of the running UEFI guest's snapshots, tests/jobs;
# the last lines but one: what the .deb depends on, so that the packaging tests can
# `dpkg -i` it; Debian 12 has no python3-pywbem, the .deb bundles pywbem; chromium and
# its driver: the live page's browser test, tests/monitoring/test_live_page.py)

.PHONY: help setup setup-test run test test-fast bench generate deb rpm clean lint

help:
	@echo "make run    - set up (apt, .venv, package) and run the embedded server on $(LISTEN)"
	@echo "make test   - set up for tests and run the whole test suite"
	@echo "make setup  - set up only;  make bench - benchmarks;  make generate - generated files"
	@echo "make deb / make rpm - build the distribution packages"

# Install missing Debian packages (as root, or through sudo when available), starting
# no service: under systemd, libvirt-daemon-system's scripts would start a system
# libvirtd and its sockets, and the tests run their own private daemons.  Without a
# policy-rc.d (container images have one that denies every start), one that does is in
# place for the install and removed after it.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  rcd=/usr/sbin/policy-rc.d; \
	  if [ ! -e $$rcd ]; then \
	    trap "$$SUDO rm -f $$rcd" EXIT; \
	    printf '%s\n' '#!/bin/sh' 'exit 101' | $$SUDO tee $$rcd >/dev/null && $$SUDO chmod 755 $$rcd; \
	  fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

# The stamps depend on the Makefile: a package added to a list is installed by the next
# make in a set-up tree too (the check is a dpkg-query per package).
$(VENV)/.stamp-apt-run: Makefile
	$(call apt_install,$(APT_RUN))
	@mkdir -p $(VENV) && touch $@

$(VENV)/.stamp-apt-test: $(VENV)/.stamp-apt-run Makefile
	$(call apt_install,$(APT_TEST))
	@touch $@

$(VENV)/bin/python: | $(VENV)/.stamp-apt-run
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(VENV)/.stamp-install: setup.py pyproject.toml $(VENV)/bin/python
	$(PIP) install -q -e '.[test]'
	@touch $@

setup: $(VENV)/.stamp-apt-run $(VENV)/.stamp-install

setup-test: setup $(VENV)/.stamp-apt-test

run: setup
	$(VENV)/bin/kvm-cimom --listen $(LISTEN) --libvirt-uri $(LIBVIRT_URI)

test: setup-test
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not qemu and not libvirtd and not slow" $(PYTEST_ARGS)

bench: setup-test
	$(PY) benchmarks/run.py $(BENCH_ARGS)

generate: setup
	$(PY) -m kvm_providers.registry.generate
	$(PY) -m kvm_providers.schema.values_gen

deb: setup-test
	./packaging/build-deb.sh

rpm: setup-test
	./packaging/build-rpm.sh

# The CI gates: ruff (F and B rules, pyproject.toml) and mypy on the package.
lint: setup
	$(PY) -m ruff check kvm_providers tests benchmarks cmpi_pywbem_bindings.py
	$(PY) -m mypy

clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

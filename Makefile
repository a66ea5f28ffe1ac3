# TiMPE. `make run` brings the topology up, `make test` runs the whole suite,
# `make stop` stops everything. The venv is made on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STORE  ?= sqlite
# STORE=crate: CrateDB nodes, the seed's 2 or 3 (survives the loss of any one).
CRATE_NODES ?= 2
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run stop status test venv haproxy strace configs clean

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "setuptools<82" wheel pip
	$(BIN)/pip install -q -e ".[test,docs]"
	touch $@

# HAProxy comes from the OS packages (Debian/Ubuntu); /usr/sbin may not be on PATH.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq haproxy >/dev/null; }

run: $(STAMP) haproxy
	$(BIN)/timpe-topology up --store $(STORE) --crate-nodes $(CRATE_NODES)

stop:
	@if [ -x $(BIN)/timpe-topology ]; then $(BIN)/timpe-topology down; else echo "not running"; fi

status: $(STAMP)
	@$(BIN)/timpe-topology status

# The durability test counts a node's syncs with strace.
strace:
	@command -v strace >/dev/null 2>&1 || test -x /usr/bin/strace || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq strace >/dev/null; }

test: $(STAMP) haproxy strace
	$(BIN)/pytest $(PYTEST_ARGS)

# Regenerate supervisord.conf and haproxy.cfg after editing etc/*.in.
configs: $(STAMP)
	$(BIN)/timpe-topology render

clean: stop
	rm -rf $(VENV) out build *.egg-info src/*.egg-info

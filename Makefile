# TiMPE. `make run` brings the topology up, `make test` runs the whole suite,
# `make stop` stops everything. The venv is made on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The exact versions the suite passed with; `make lock` refreshes them.
LOCK   := constraints.txt
PIP    := $(BIN)/pip install -q -c $(LOCK)
# The CrateDB client and shell (setup.py's `crate` extra).
CRATE_STAMP := $(VENV)/.crate-installed
STORE  ?= sqlite
# STORE=crate: CrateDB nodes, the seed's 2 or 3 (survives the loss of any one).
CRATE_NODES ?= 2
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run stop status test venv crate-client lock haproxy strace netfilter configs clean

venv: $(STAMP)

$(STAMP): setup.py $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade setuptools wheel pip
	$(PIP) -e ".[test,docs]"
	touch $@

crate-client: $(CRATE_STAMP)

$(CRATE_STAMP): $(STAMP)
	$(PIP) -e ".[crate]"
	touch $@

# What a fresh install takes from the index today, every extra, into
# $(LOCK): a venv of its own, so nothing installed by hand slips in.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install -q --upgrade "setuptools<82" wheel pip
	$(VENV)-lock/bin/pip install -q ".[test,docs,crate]"
	{ echo "# The exact versions the suite passed with: make lock refreshes them."; \
	  $(VENV)-lock/bin/pip freeze --all --exclude timpe; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(VENV)-lock

# HAProxy comes from the OS packages (Debian/Ubuntu); /usr/sbin may not be on PATH.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq haproxy >/dev/null; }

run: $(STAMP) haproxy $(if $(filter crate,$(STORE)),$(CRATE_STAMP))
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

# The partition tests build network namespaces (iproute2) and drop packets
# one way (nftables); they skip where the machine gives no privilege for it.
netfilter:
	@{ command -v nft || test -x /usr/sbin/nft; } >/dev/null 2>&1 && \
	 { command -v ip || test -x /usr/sbin/ip || test -x /sbin/ip; } >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nftables iproute2 >/dev/null; }

# Where CrateDB is installed its tests run too, bin/crash's among them.
test: $(STAMP) haproxy strace netfilter $(if $(CRATE_HOME),$(CRATE_STAMP))
	$(BIN)/pytest $(PYTEST_ARGS)

# Regenerate supervisord.conf and haproxy.cfg after editing etc/*.in.
configs: $(STAMP)
	$(BIN)/timpe-topology render

clean: stop
	rm -rf $(VENV) out build *.egg-info src/*.egg-info

"""A network of its own for the partition tests: each member (a CrateDB
node, an app node) in a network namespace of its own, all joined by a
bridge in a hub namespace, and this process reaching them over one more
link. Links are cut and healed, and packets dropped one way, under a
running load (tests/e2e/test_partitions.py).

    hub namespace: bridge br0
      ├─ veth ── member namespace: eth0 10.77.S.N/24, 127.77.S.N/24  (one per member)
      └─ veth ── this namespace:   10.77.S.254/24       (the tests)

``S`` is drawn per network, so that two runs on one machine do not meet.
A member's second address, a loopback one carried over the same link
(``route_localnet``), is for CrateDB's transport: a node bound to a
loopback address is a development node, which skips the production
checks of its limits (65,536 open files, ``vm.max_map_count``) that an
unprivileged container cannot raise. Cutting the link cuts both.

Needs root, iproute2 (``ip netns``) and nftables (``nft``), which ``make
test`` installs (``make netfilter``); :func:`missing` says what is not
there. The kernel may lack ``netem`` (delay and random loss on a link):
:func:`netem_missing` says so, and the tests that need it skip.
"""
import os
import random
import shutil
import subprocess

IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
NFT = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin")
TC = shutil.which("tc", path="/usr/sbin:/sbin:/usr/bin:/bin")
ROOT_HOST = 254


def run(*argv, check=True):
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: {done.stderr.strip()}")
    return done


def missing():
    """Why no network of namespaces can be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the suite as root)"
    if IP is None or NFT is None:
        return "iproute2 or nftables is not installed (make netfilter installs them)"
    probe = f"timpe-probe-{os.getpid()}"
    made = run(IP, "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add fails here: {made.stderr.strip()}"
    try:
        bridge = run(IP, "-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"this kernel makes no bridge: {bridge.stderr.strip()}"
        table = run(IP, "netns", "exec", probe, NFT, "add", "table", "inet", "probe", check=False)
        if table.returncode != 0:
            return f"nftables does not work here: {table.stderr.strip()}"
    finally:
        run(IP, "netns", "del", probe, check=False)
    return None


def netem_missing():
    """Why delay and random loss cannot be put on a link here, or None."""
    if TC is None:
        return "tc (iproute2) is not installed"
    probe = f"timpe-netem-{os.getpid()}"
    run(IP, "netns", "add", probe)
    try:
        run(IP, "-n", probe, "link", "set", "lo", "up")
        done = run(IP, "netns", "exec", probe, TC, "qdisc", "add", "dev", "lo", "root",
                   "netem", "delay", "10ms", check=False)
        return (None if done.returncode == 0 else
                f"this kernel has no netem (tc qdisc ... netem: {done.stderr.strip()})")
    finally:
        run(IP, "netns", "del", probe)


class Network:
    """Members by name, each with an address; made by ``up``, gone after
    ``down`` (also after a test that failed half way)."""

    def __init__(self, names):
        self.subnet = random.Random(os.getpid()).randint(1, 250)
        self.tag = f"t{os.getpid() % 100000}"
        self.hub = f"{self.tag}-hub"
        self.names = list(names)
        self.address = {name: self._ip(i + 1) for i, name in enumerate(self.names)}
        self.loopback = {name: f"127.77.{self.subnet}.{i + 1}"
                         for i, name in enumerate(self.names)}
        self.root_address = self._ip(ROOT_HOST)
        self.subnet_cidr = self._ip(0) + "/24"

    def _ip(self, host):
        return f"10.77.{self.subnet}.{host}"

    def namespace(self, name):
        return f"{self.tag}-{name}"

    def _port(self, name):
        """The hub's end of ``name``'s link (interface names: 15 characters)."""
        index = "r" if name is None else self.names.index(name)
        return f"{self.tag}{index}"

    def up(self):
        run(IP, "netns", "add", self.hub)
        run(IP, "-n", self.hub, "link", "add", "br0", "type", "bridge")
        run(IP, "-n", self.hub, "link", "set", "br0", "up")
        for name in self.names:
            space, port = self.namespace(name), self._port(name)
            run(IP, "netns", "add", space)
            run(IP, "-n", space, "link", "set", "lo", "up")
            run(IP, "-n", space, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                "netns", self.hub)
            run(IP, "-n", space, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
            run(IP, "-n", space, "addr", "add", f"{self.loopback[name]}/24", "dev", "eth0")
            # 127/8 is this host's own but for 127.0.0.1: the rest may leave.
            run(IP, "-n", space, "route", "del", "local", "127.0.0.0/8", "dev", "lo",
                "table", "local")
            run(*self.exec(name), "sh", "-c", "for d in all eth0; do "
                "echo 1 > /proc/sys/net/ipv4/conf/$d/route_localnet; done")
            run(IP, "-n", space, "link", "set", "eth0", "up")
            self._attach(port)
        port = self._port(None)
        run(IP, "link", "add", f"{port}h", "type", "veth", "peer", "name", port,
            "netns", self.hub)
        run(IP, "addr", "add", f"{self.root_address}/24", "dev", f"{port}h")
        run(IP, "link", "set", f"{port}h", "up")
        self._attach(port)
        return self

    def _attach(self, port):
        run(IP, "-n", self.hub, "link", "set", port, "master", "br0")
        run(IP, "-n", self.hub, "link", "set", port, "up")

    def down(self):
        for name in self.names:
            run(IP, "netns", "del", self.namespace(name), check=False)
        run(IP, "link", "del", f"{self._port(None)}h", check=False)
        run(IP, "netns", "del", self.hub, check=False)

    def exec(self, name):
        """The command prefix that runs a program inside ``name``'s namespace."""
        return [IP, "netns", "exec", self.namespace(name)]

    # -- faults ------------------------------------------------------------------

    def isolate(self, name):
        """Cut ``name``'s link: it reaches no one, and no one reaches it."""
        run(IP, "-n", self.hub, "link", "set", self._port(name), "down")

    def drop(self, name, to):
        """Drop every packet ``name`` sends to the members ``to``; what they
        send it still arrives (one-way loss)."""
        space = self.namespace(name)
        run(*self.exec(name), NFT, "add", "table", "inet", "nemesis")
        run(*self.exec(name), NFT, "add", "chain", "inet", "nemesis", "out",
            "{ type filter hook output priority 0 ; }")
        for other in to:
            for address in (self.address[other], self.loopback[other]):
                run(IP, "netns", "exec", space, NFT, "add", "rule", "inet", "nemesis", "out",
                    "ip", "daddr", address, "drop")

    def degrade(self, name, delay="100ms", jitter="50ms", loss="10%"):
        """Delay and lose at random what the hub sends ``name`` (netem)."""
        run(IP, "netns", "exec", self.hub, TC, "qdisc", "add", "dev", self._port(name), "root",
            "netem", "delay", delay, jitter, "loss", loss)

    def heal(self):
        """Every link up, every drop rule and delay gone."""
        for name in self.names:
            run(IP, "-n", self.hub, "link", "set", self._port(name), "up")
            run(*self.exec(name), NFT, "delete", "table", "inet", "nemesis", check=False)
            if TC is not None:
                run(IP, "netns", "exec", self.hub, TC, "qdisc", "del", "dev", self._port(name),
                    "root", check=False)

"""Which app node HAProxy sends a transfer to.

Any node serves any transfer: routing is never a rule of the protocol, only
a way to spend fewer store requests. The store adapter says what suits it
(IStore.affinity), ``routing.affinity`` in the app's ini may say otherwise,
and HAProxy reads the choice from its environment (``TIMPE_AFFINITY``),
which bin/topology hands supervisord with the app's ini.
"""
from timpe.store import store_class

#: 'one': every write of legs (transfers, posts, voids, /process) to the
#: first node up, the other taking over when it is down; 'sender': a
#: sender's transfers to one node (a hash of the body's sender, consistent:
#: a node down moves only its own senders); 'none': round robin.
CHOICES = ("one", "sender", "none")
ENV = "TIMPE_AFFINITY"


def affinity(settings):
    """The routing of transfers that ``settings`` (an app's) ask for."""
    chosen = settings.get("routing.affinity") or store_class(settings).affinity
    if chosen not in CHOICES:
        raise ValueError(f"routing.affinity must be one of {', '.join(CHOICES)}, "
                         f"not {chosen!r}")
    return chosen

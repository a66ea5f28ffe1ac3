"""A history of the requests a load sent and what each got, and a checker
of it, after Jepsen's bank workload: accounts, transfers between them, and
reads of their balances, checked against every order the acknowledged
transfers could have taken effect in.

Each operation is a dict, as Jepsen records them:

``f``
    ``transfer`` (``id``, ``sender``, ``recipient``, ``amount`` in cents:
    the load chooses the id, so a transfer whose answer never came can
    still be looked up), ``read`` (``user``, ``balance``) or ``state``
    (``id``, ``state``: what ``GET /transactions/{id}`` showed).
``type``
    ``ok`` (it took effect; a transfer's answer says its ``state``),
    ``fail`` (it certainly did not: a 4xx that records nothing) or
    ``info`` (no one knows: a 503, a cut connection, a timeout).
``invoke``, ``complete``
    time.monotonic() when it was sent and when its answer came.

:func:`check` reads a history with the accounts' initial balances and what
each transfer and account ended as (read once every node has processed);
it returns the problems it finds, in words, none when the history is
explained.
"""
import json
import threading
import time
from collections import Counter, defaultdict

#: States in the order a transfer may pass through them; the last two are
#: both terminal, and neither follows the other.
ORDER = {"initial": 0, "in progress": 1, "committed": 2, "finished": 3, "failed": 3}
TERMINAL = ("finished", "failed")


class History:
    """Operations recorded by many threads; written to ``path`` (JSON
    lines) as they end, when a path is given."""

    def __init__(self, path=None):
        self.ops, self.lock, self.path = [], threading.Lock(), path

    def record(self, op):
        with self.lock:
            self.ops.append(op)
            if self.path is not None:
                with open(self.path, "a") as out:
                    out.write(json.dumps(op, default=str) + "\n")

    def between(self, start, end=float("inf")):
        """The operations under way at some moment from ``start`` to ``end``."""
        with self.lock:
            return [op for op in self.ops if op["invoke"] < end and op["complete"] > start]


def answers(ops):
    """The answers of ``ops`` by kind: the HTTP status, or the error's name."""
    return Counter(f"{op['f']} {op['answer']}" for op in ops)


def slowest(ops):
    """The longest any of ``ops`` waited for its answer, in seconds."""
    return max((op["complete"] - op["invoke"] for op in ops), default=0)


class Client:
    """Requests through ``api`` (tests.e2e.api.Api), each recorded in
    ``history``."""

    def __init__(self, api, history):
        self.api, self.history = api, history

    def _call(self, op, judge, method, path, **kwargs):
        """Send the request, record ``op`` with its answer and what
        ``judge(status, body)`` makes of it (type, and what was seen)."""
        op["invoke"] = time.monotonic()
        try:
            status, body = self.api.call(method, path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - cut, refused, timed out: unknown
            status, body = type(exc).__name__, {}
        op["complete"], op["answer"] = time.monotonic(), status
        data = body.get("data") if isinstance(body, dict) else None
        op.update(judge(status, data) or {"type": "info"})
        self.history.record(op)
        return op

    def transfer(self, txn_id, sender, recipient, amount, immediately):
        def judge(status, data):
            if data and status in (200, 201, 202, 422):  # a 422 with data: recorded, failed
                return {"type": "ok", "state": data["state"]}
            if isinstance(status, int) and 400 <= status < 500:
                return {"type": "fail"}
            return None
        path = "/transactions/immediately" if immediately else "/transactions"
        return self._call({"f": "transfer", "id": txn_id, "sender": sender,
                           "recipient": recipient, "amount": amount}, judge, "POST", path,
                          json={"id": txn_id, "sender": sender, "recipient": recipient,
                                "amount": amount / 100})

    def read(self, user):
        def judge(status, data):
            return {"type": "ok", "balance": round(data["balance"] * 100)} if status == 200 \
                else None
        return self._call({"f": "read", "user": user}, judge, "GET", f"/users/{user}")

    def state(self, txn_id):
        def judge(status, data):
            if status in (200, 404):  # 404: not recorded (None)
                return {"type": "ok", "state": data["state"] if status == 200 else None}
            return None
        return self._call({"f": "state", "id": txn_id}, judge, "GET", f"/transactions/{txn_id}")


def check(ops, initial, final_states, final_balances):
    """The problems of the history ``ops``: ``initial`` and ``final_balances``
    map each account to cents, ``final_states`` each transfer id the history
    names to its state once all was processed (None: never recorded)."""
    problems = []
    transfers = {op["id"]: op for op in ops if op["f"] == "transfer"}
    for txn_id, op in transfers.items():
        final = final_states.get(txn_id)
        if op["type"] == "ok" and final not in TERMINAL:
            problems.append(f"lost: {txn_id} was acknowledged ({op['answer']}) and ended "
                            f"{final or 'not recorded'}")
        if op["type"] == "fail" and final is not None:
            problems.append(f"{txn_id} was refused ({op['answer']}) but recorded: {final}")
    problems += _forward(ops, final_states)
    finished = [op for op in transfers.values() if final_states.get(op["id"]) == "finished"]
    seen = _first_seen_finished(ops)
    for read in (op for op in ops if op["f"] == "read" and op["type"] == "ok"):
        problems += _explained(read, initial, finished, seen)
    for user, balance in final_balances.items():
        moved = sum(_delta(op, user) for op in finished)
        if balance != initial[user] + moved:
            problems.append(f"{user} ends at {balance}, not {initial[user]} + {moved} "
                            "that the finished transfers moved")
    if sum(final_balances.values()) != sum(initial[u] for u in final_balances):
        problems.append(f"money not conserved: {sum(final_balances.values())} at the end, "
                        f"{sum(initial[u] for u in final_balances)} at the start")
    return problems


def _delta(op, user):
    return (-op["amount"] if op["sender"] == user else 0) + \
           (op["amount"] if op["recipient"] == user else 0)


def _forward(ops, final_states):
    """A state seen by an answer that came before another request was sent
    may not be later than the one that request saw, nor than the end; nor
    may the transfer be gone (a 404) once a state of it was seen."""
    problems = []
    seen = defaultdict(list)
    for op in ops:
        if op["type"] == "ok" and op["f"] in ("transfer", "state"):
            seen[op["id"]].append(op)
    for txn_id, views in seen.items():
        final = final_states.get(txn_id)
        for earlier in (op for op in views if op["state"] is not None):
            later = [op for op in views if op["invoke"] > earlier["complete"]]
            for view in later + [{"state": final, "answer": "the end"}]:
                if not _follows(earlier["state"], view["state"]):
                    problems.append(f"{txn_id} went back: {earlier['state']} was seen, "
                                    f"then {view['state'] or 'none'} ({view['answer']})")
                    break
    return problems


def _follows(before, after):
    if after is None:
        return False  # a state was seen: the transfer may not vanish
    if before in TERMINAL:
        return after == before
    return ORDER[after] >= ORDER[before]


def _first_seen_finished(ops):
    """When each transfer's answer first said it was finished."""
    first = {}
    for op in ops:
        if op["type"] == "ok" and op.get("state") == "finished" and "id" in op:
            first[op["id"]] = min(first.get(op["id"], op["complete"]), op["complete"])
    return first


def _explained(read, initial, finished, seen):
    """Whether some order of the transfers explains ``read``: those seen
    finished before it was sent must show, any other that ended finished and
    was sent before it was answered may, the rest may not."""
    user, balance = read["user"], read["balance"]
    if balance < 0:
        return [f"{user} read negative: {balance}"]
    must, may = initial[user], []
    for op in finished:
        delta = _delta(op, user)
        if not delta or op["invoke"] > read["complete"]:
            continue
        if seen.get(op["id"], float("inf")) < read["invoke"]:
            must += delta
        else:
            may.append(delta)
    if _reachable(balance - must, may):
        return []
    return [f"{user} read {balance}: no order of the transfers explains it "
            f"({must} from those it must show, {len(may)} it may)"]


def _reachable(target, deltas):
    """Whether some of ``deltas`` sum to ``target`` (a bitset of the sums)."""
    low = sum(d for d in deltas if d < 0)
    high = sum(d for d in deltas if d > 0)
    if not low <= target <= high:
        return False
    sums = 1 << -low  # bit i: the sum i + low is reachable
    for delta in deltas:
        sums |= sums << delta if delta > 0 else sums >> -delta
    return bool(sums >> (target - low) & 1)

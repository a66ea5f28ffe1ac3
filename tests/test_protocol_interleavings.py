"""Several processors step the same transactions in random orders, each from
its own (often stale) copy: they must converge and never apply one twice."""
import random

import pytest

from tests.conftest import assert_sound
from tests.lagging import LaggingStore
from timpe.errors import InsufficientFunds
from timpe.transactions.protocol import TERMINAL, Processor
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


@pytest.mark.parametrize("searches", ["current", "lagging"])
@pytest.mark.parametrize("seed", range(40))
def test_random_interleavings_converge(store, seed, searches):
    rnd = random.Random(seed)
    if searches == "lagging":  # every processor's searches lag behind the writes
        store = LaggingStore(store, seed=seed)
    users = UserService(store)
    ids = [users.register(f"u{i}", rnd.choice([0, 500, 3000]) if i else 3000)["id"] for i in range(3)]
    service = TransactionService(store)
    txns = []
    for _ in range(8):
        sender, recipient = rnd.sample(ids, 2)
        try:
            # Queued, or as an immediate transfer records it (both legs claimed).
            txns.append(service.create(sender, recipient, rnd.randint(1, 20) * 100,
                                       claimed=rnd.random() < 0.5)[0])
        except InsufficientFunds:
            pass
    processors = [Processor(store) for _ in range(3)]
    copies = {(p, t["id"]): t for p in range(3) for t in txns}
    for _ in range(400):
        p, txn = rnd.randrange(3), rnd.choice(txns)
        copy = copies[(p, txn["id"])]
        if copy["state"] not in TERMINAL:
            copies[(p, txn["id"])] = processors[p].step(copy)
    service.process()
    assert_sound(store)
    assert searches == "current" or store.lagged > 0

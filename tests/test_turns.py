"""Turns: one transfer at a time per user within a process."""
import threading
import time

from timpe.errors import StoreUnavailable
from timpe.transactions.services import TransactionService
from timpe.transactions.turns import Turns


def test_callers_sharing_a_user_take_turns_and_others_do_not_wait():
    turns, inside, overlaps = Turns(), set(), []
    lock = threading.Lock()

    def transfer(users, hold):
        with turns.taken(*users):
            with lock:
                overlaps.extend(u for u in users if u in inside)
                inside.update(users)
            time.sleep(hold)
            with lock:
                inside.difference_update(users)

    started = time.monotonic()
    threads = [threading.Thread(target=transfer, args=(users, 0.05))
               for users in (("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps == [] and len(turns) == 0
    assert time.monotonic() - started < 0.05 * 3 + 0.1  # d, e never waited for a, b, c


def test_a_turn_given_back_early_lets_the_next_one_in():
    turns, order = Turns(), []

    def wait_for_a():
        with turns.taken("a"):
            order.append("a")

    with turns.taken("a", "b") as give_back:
        waiter = threading.Thread(target=wait_for_a)
        waiter.start()
        time.sleep(0.05)
        assert order == []
        give_back("a")
        waiter.join(5)
        assert order == ["a"]
    assert len(turns) == 0


def test_every_service_of_a_process_shares_its_turns_even_while_none_is_held(store):
    # An empty Turns is falsy (no user has a turn): it must still be shared.
    turns = Turns()
    assert TransactionService(store, turns=turns).turns is turns


def test_a_waiter_gives_up_only_when_asked_to_and_leaves_nothing_behind():
    turns, outcomes, asked = Turns(), [], []
    failing = threading.Event()

    def impatient():
        try:
            with turns.taken("a", "b", patience=0.05, give_up=lambda: asked.append(1) or
                             failing.is_set()):
                outcomes.append("turn")
        except StoreUnavailable as exc:
            outcomes.append(exc)

    with turns.taken("b"):  # a healthy store's queue: it keeps waiting
        waiter = threading.Thread(target=impatient)
        waiter.start()
        time.sleep(0.3)
        assert outcomes == [] and len(asked) >= 2
    waiter.join(5)
    assert outcomes == ["turn"]

    outcomes.clear()
    with turns.taken("b"):  # the store is failing: 503, with the turn it got given back
        failing.set()
        waiter = threading.Thread(target=impatient)
        waiter.start()
        waiter.join(5)
        assert isinstance(outcomes[0], StoreUnavailable) and "user b" in outcomes[0].msg, outcomes
        assert turns.free("a")
    assert len(turns) == 0
    with turns.taken("a", "b", patience=0.05):  # nothing is left held
        pass

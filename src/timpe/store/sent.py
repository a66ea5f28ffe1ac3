"""What a store adapter sent: requests, and the rows or keys they carried.

On CrateDB many callers' statements travel as one request (a bulk write,
a look-up of many keys): calls of the primitives count what the protocol
asks, this counts what the store is asked, which is what costs it CPU.
"""
from collections import Counter


class Sent:
    def __init__(self):
        self.requests = Counter()  # kind ('write', 'read', 'search') -> requests
        self.rows = Counter()      # kind -> rows written or keys looked up

    def add(self, kind, rows):
        self.requests[kind] += 1
        self.rows[kind] += rows

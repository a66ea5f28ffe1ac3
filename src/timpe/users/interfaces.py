from zope.interface import Interface


class IUserService(Interface):
    def register(nickname, balance):
        """Register a user with an initial balance (cents); return the user.

        Raises Conflict when the nickname is taken.
        """

    def find(user_id):
        """Return the user with balance, or raise NotFound."""

    def all(limit=None, after=None):
        """Users with balance, ordered by nickname (eventually consistent):
        every one, or a page of ``limit`` after the user ``after``; return
        (users, the next page's ``after`` or None)."""

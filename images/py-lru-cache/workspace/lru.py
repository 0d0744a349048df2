"""A small least-recently-used cache."""


class LRUCache:
    """Mapping with a fixed capacity that evicts the least recently used key."""

    def __init__(self, capacity):
        self.capacity = capacity
        self._data = {}
        self._order = []  # keys, oldest first

    def get(self, key, default=None):
        """Return the value for key (marking it as recently used), or default."""
        if key in self._data:
            return self._data[key]
        return default

    def put(self, key, value):
        """Insert or update key, evicting the least recently used key if full."""
        if len(self._data) >= self.capacity:
            oldest = self._order.pop(0)
            del self._data[oldest]
        self._data[key] = value
        self._order.append(key)

    def __contains__(self, key):
        return key in self._data

    def __len__(self):
        return len(self._data)

    def keys(self):
        """Keys from least to most recently used."""
        return list(self._order)

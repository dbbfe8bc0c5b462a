"""The shared class of the fault workload (importable by every client process)."""

from __future__ import annotations

import time


class Adder:
    """Adds an amount and returns the new value, with a yield between its read and its
    write (as any I/O in a method does), so a lost update or a double apply shows.

    Each call of the workload adds an amount no other call adds, so the final value tells
    exactly which calls took effect: what an error claims about its call can be checked.
    """

    def __init__(self, value=0):
        self.value = value

    def add(self, amount):
        value = self.value
        time.sleep(0)
        self.value = value + amount
        return self.value

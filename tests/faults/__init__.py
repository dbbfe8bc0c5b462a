"""The fault suite (issue 13): faults injected against servers the tests start themselves.

Run it alone with ``pytest -m faults``; it also runs in the normal suite and in CI.
"""

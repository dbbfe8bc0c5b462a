"""The fault suite (issue 13): faults injected against servers the tests start themselves.

Run it alone with ``pytest -m faults`` (or ``pytest tests/faults``); it also runs in the
normal suite and in CI. Partitions need root, ``ip netns`` and iptables: without them the
partition tests skip, except under ``CI=true`` where they fail.

* ``test_server_faults.py``: a multi-process workload under kill -9, SIGSTOP and a
  partition of Redis and PostgreSQL, judged call by call;
* ``test_client_faults.py``: a lock or transaction holder paused past its ttl, a client
  whose clock runs 30 s ahead, on every backend shared between processes;
* ``test_harness.py``: the judges catch each kind of lie; the faults take hold and are undone;
* ``harness.py`` (client processes, fault schedule), ``client.py`` (the client process),
  ``accounting.py`` (the judges), ``targets.py`` (servers), ``netns.py`` (namespaces).

The counts per fault and backend (ok / did-not-happen / unknown) are printed at the end
of the session.
"""

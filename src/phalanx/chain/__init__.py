"""phalanx.chain: the on-chain ledger of protocol.md §4 (see docs/ledger.md).

- ``phalanx/contracts/Phalanx.vy``: the Vyper 0.4.3 task contract (shipped as package data);
- ``chain.model``: the pure, bit-for-bit Python mirror of its integer math and state machine;
- ``chain.ledger``: the ``Ledger`` interface and ``make_ledger(backend=...)`` with the backends
  ``embedded`` (titanoboa, default), ``rpc`` (web3.py) and ``model`` (the mirror, no EVM);
- ``chain.driver``: ``RoundDriver``, whole rounds on any backend.

Nothing is imported here, so ``import phalanx.chain`` stays cheap.
"""

"""What can go wrong talking to a chain, as a small tree the daemon maps to HTTP.

`ChainUnavailable` (503 ``chain_unavailable``): the cluster could not be reached or did
not confirm in time; the action may or may not have happened, so the caller checks the
chain (`ConfirmationTimeout.signatures`) before doing it again. `TransactionFailed`: the
chain refused the transaction; nothing it asked for was applied.
"""

from __future__ import annotations

from solders.signature import Signature

__all__ = ["ChainError", "ChainUnavailable", "ConfirmationTimeout", "TransactionFailed"]


class ChainError(Exception):
    """Any chain failure."""


class ChainUnavailable(ChainError):
    """The RPC node could not be reached, answered badly, or says it is unhealthy."""


class ConfirmationTimeout(ChainUnavailable):
    """No signature of the action was confirmed before the deadline.

    ``signatures`` lists every signature that was sent and may still land until block
    height ``last_valid_block_height``; after that height, none of them can.
    """

    def __init__(
        self, message: str, signatures: list[Signature], last_valid_block_height: int
    ) -> None:
        super().__init__(message)
        self.signatures = signatures
        self.last_valid_block_height = last_valid_block_height


class TransactionFailed(ChainError):
    """The chain refused the transaction (in preflight, or it landed with an error).

    ``code`` is the program's custom error (the escrow's 6000-up codes; SPL Token's and
    the system program's own small numbers) or None for other errors, whose name is in
    ``error``. ``instruction`` is the index in the caller's instruction list (None when
    the error is not an instruction's). ``signature``/``slot`` are set when the failed
    transaction landed (its fee was paid, nothing else changed).
    """

    def __init__(
        self,
        error: str,
        *,
        code: int | None = None,
        instruction: int | None = None,
        logs: list[str] | None = None,
        signature: Signature | None = None,
        slot: int | None = None,
    ) -> None:
        where = "" if instruction is None else f" in instruction {instruction}"
        super().__init__(f"transaction failed{where}: {error}")
        self.error = error
        self.code = code
        self.instruction = instruction
        self.logs = logs or []
        self.signature = signature
        self.slot = slot

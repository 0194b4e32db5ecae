"""`collect_fees`: the admin pays the accrued fees (open fees, keeper
liquidation rewards) out of the vault to the configured fee account."""

from escrow_harness import USDC, Escrow, Trade
from solders.keypair import Keypair


def test_the_admin_collects_the_open_fees(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given one position opened (0.05 % of 10,000 USDC = 5 USDC of fees)
    escrow.open(trade)
    assert escrow.config_state().accrued_fees == 5 * USDC
    # When the admin collects
    outcome = escrow.send(escrow.collect_fees_ix(), escrow.admin)
    # Then the fee account holds them and the config none (the books still balance)
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(escrow.fee_account) == 5 * USDC
    assert escrow.config_state().accrued_fees == 0


def test_only_the_admin_collects(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given fees accrued by a lock
    escrow.open(trade)
    # When a stranger collects them
    stranger = escrow.funded_keypair()
    # Then it is refused and nothing moves
    escrow.refuse([escrow.collect_fees_ix(admin=stranger.pubkey())], [stranger], "NotAdmin")


def test_fees_go_only_to_the_configured_account(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given fees accrued by a lock and a USDC account that is not the fee account
    escrow.open(trade)
    other = escrow.token_account(Keypair().pubkey(), 0)
    # When the admin collects into it
    ix = escrow.collect_fees_ix(feeAccount=other)
    # Then it is refused and nothing moves
    escrow.refuse([ix], [escrow.admin], "InvalidFeeAccount")


def test_nothing_to_collect_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given no fee accrued yet
    # When the admin collects
    # Then it is refused and nothing moves
    escrow.refuse([escrow.collect_fees_ix()], [escrow.admin], "InvalidAmount")

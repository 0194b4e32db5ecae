//! Every way an instruction of this program can fail, numbered.
//!
//! The numbers are the custom program error codes a client sees
//! (`InstructionError::Custom(code)`), Anchor-style from 6000. They are part of
//! the interface (`idl/escrow.json` lists them; `tools/idl.py` checks both agree):
//! never renumber, only append.

/// A failure of this program, returned to the runtime as a custom error code.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EscrowError {
    /// The instruction data is not one of this program's instructions.
    InvalidInstruction = 6000,
    /// Fewer accounts were passed than the instruction needs.
    NotEnoughAccounts = 6001,
    /// An account that must sign did not.
    MissingSigner = 6002,
    /// An account that is written was passed read-only.
    NotWritable = 6003,
    /// An account is owned by the wrong program.
    InvalidAccountOwner = 6004,
    /// An account's data has the wrong length or discriminator.
    InvalidAccountData = 6005,
    /// An account is not the program-derived address its seeds give.
    InvalidPda = 6006,
    /// The config account exists already.
    AlreadyInitialized = 6007,
    /// A mint, or a token account's mint, is not the configured USDC mint.
    InvalidMint = 6008,
    /// The vault is not the configured vault, or is not a usable token account.
    InvalidVault = 6009,
    /// The vault authority is not the program's vault PDA.
    InvalidVaultAuthority = 6010,
    /// A token account is malformed, frozen or not a token account.
    InvalidTokenAccount = 6011,
    /// The token program passed is not SPL Token.
    InvalidTokenProgram = 6012,
    /// The system program passed is not the system program.
    InvalidSystemProgram = 6013,
    /// The collateral account belongs to another agent.
    CollateralMismatch = 6014,
    /// The withdrawal is larger than the agent's free collateral.
    InsufficientFreeCollateral = 6015,
    /// The amount is zero.
    InvalidAmount = 6016,
    /// A balance would overflow.
    ArithmeticOverflow = 6017,
    /// The same account was passed where distinct accounts are required.
    DuplicateAccount = 6018,
    /// The fee account is not a USDC token account.
    InvalidFeeAccount = 6019,
    /// The source token account is not owned by the depositor.
    SourceOwnerMismatch = 6020,
    /// The rent sysvar could not be read or has an unsupported threshold.
    RentUnavailable = 6021,
}

impl EscrowError {
    /// The code returned to the runtime.
    #[inline(always)]
    pub const fn code(self) -> u64 {
        self as u32 as u64
    }

    /// The error's name, as listed in the IDL.
    #[inline(always)]
    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidInstruction => "InvalidInstruction",
            Self::NotEnoughAccounts => "NotEnoughAccounts",
            Self::MissingSigner => "MissingSigner",
            Self::NotWritable => "NotWritable",
            Self::InvalidAccountOwner => "InvalidAccountOwner",
            Self::InvalidAccountData => "InvalidAccountData",
            Self::InvalidPda => "InvalidPda",
            Self::AlreadyInitialized => "AlreadyInitialized",
            Self::InvalidMint => "InvalidMint",
            Self::InvalidVault => "InvalidVault",
            Self::InvalidVaultAuthority => "InvalidVaultAuthority",
            Self::InvalidTokenAccount => "InvalidTokenAccount",
            Self::InvalidTokenProgram => "InvalidTokenProgram",
            Self::InvalidSystemProgram => "InvalidSystemProgram",
            Self::CollateralMismatch => "CollateralMismatch",
            Self::InsufficientFreeCollateral => "InsufficientFreeCollateral",
            Self::InvalidAmount => "InvalidAmount",
            Self::ArithmeticOverflow => "ArithmeticOverflow",
            Self::DuplicateAccount => "DuplicateAccount",
            Self::InvalidFeeAccount => "InvalidFeeAccount",
            Self::SourceOwnerMismatch => "SourceOwnerMismatch",
            Self::RentUnavailable => "RentUnavailable",
        }
    }
}

/// What every processor returns.
pub type ProgramResult = Result<(), EscrowError>;

#[cfg(test)]
mod tests {
    use super::EscrowError;

    #[test]
    fn codes_are_anchor_style_and_stable() {
        assert_eq!(EscrowError::InvalidInstruction.code(), 6000);
        assert_eq!(EscrowError::InsufficientFreeCollateral.code(), 6015);
        assert_eq!(EscrowError::RentUnavailable.code(), 6021);
        assert_eq!(EscrowError::CollateralMismatch.name(), "CollateralMismatch");
    }
}

//! Every way an instruction of this program can fail, numbered.
//!
//! The numbers are the custom program error codes a client sees
//! (`InstructionError::Custom(code)`), Anchor-style from 6000. They are part of
//! the interface (`idl/escrow.json` lists them; `tools/idl.py` checks both agree):
//! never renumber, only append.
//!
//! On failure the entrypoint logs the error the way Anchor programs do
//! (`AnchorError occurred. Error Code: <Name>. Error Number: <n>. Error Message: <msg>.`),
//! which Anchor's TypeScript client parses into an `AnchorError`; each line is a
//! string constant built at compile time, so logging costs one syscall.

macro_rules! errors {
    ($($name:ident = $code:literal => $msg:literal,)*) => {
        /// A failure of this program, returned to the runtime as a custom error code.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EscrowError {
            $(#[doc = $msg] $name = $code,)*
        }

        impl EscrowError {
            /// The error's name, as listed in the IDL.
            #[inline(always)]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                }
            }

            /// The error's message, as listed in the IDL.
            #[inline(always)]
            pub const fn message(self) -> &'static str {
                match self {
                    $(Self::$name => $msg,)*
                }
            }

            /// The line Anchor clients parse from the program log.
            #[inline(always)]
            pub const fn anchor_log(self) -> &'static str {
                match self {
                    $(Self::$name => concat!(
                        "AnchorError occurred. Error Code: ", stringify!($name),
                        ". Error Number: ", stringify!($code),
                        ". Error Message: ", $msg, "."
                    ),)*
                }
            }
        }
    };
}

errors! {
    InvalidInstruction = 6000 => "The instruction data is not one of this program's instructions",
    NotEnoughAccounts = 6001 => "Fewer accounts were passed than the instruction needs",
    MissingSigner = 6002 => "An account that must sign did not",
    NotWritable = 6003 => "An account that is written was passed read-only",
    InvalidAccountOwner = 6004 => "An account is owned by the wrong program",
    InvalidAccountData = 6005 => "An account's data has the wrong length or discriminator",
    InvalidPda = 6006 => "An account is not the program-derived address its seeds give",
    AlreadyInitialized = 6007 => "The config account exists already",
    InvalidMint = 6008 => "A mint, or a token account's mint, is not the configured USDC mint",
    InvalidVault = 6009 => "The vault is not the configured vault, or is not a usable token account",
    InvalidVaultAuthority = 6010 => "The vault authority is not the program's vault PDA",
    InvalidTokenAccount = 6011 => "A token account is malformed, frozen or not a token account",
    InvalidTokenProgram = 6012 => "The token program passed is not SPL Token",
    InvalidSystemProgram = 6013 => "The system program passed is not the system program",
    CollateralMismatch = 6014 => "The collateral account belongs to another agent",
    InsufficientFreeCollateral = 6015 => "The amount is larger than the agent's free collateral",
    InvalidAmount = 6016 => "The amount is zero",
    ArithmeticOverflow = 6017 => "A balance would overflow",
    DuplicateAccount = 6018 => "The same account was passed where distinct accounts are required",
    InvalidFeeAccount = 6019 => "The fee account is not a USDC token account",
    SourceOwnerMismatch = 6020 => "The source token account is not owned by the depositor",
    RentUnavailable = 6021 => "The rent sysvar could not be read or has an unsupported threshold",
    InvalidProgramAccount = 6022 => "The program account is not this program under the upgradeable loader",
    InvalidProgramData = 6023 => "The program data account is not this program's, or has no upgrade authority",
    NotUpgradeAuthority = 6024 => "The signer is not the program's upgrade authority",
    NotAdmin = 6025 => "The signer is not the config's admin",
    NotRouter = 6026 => "The signer is not the config's router authority",
    InvalidMarket = 6027 => "The market index is outside the config's market table",
    MarketNotListed = 6028 => "The market is not listed for new positions",
    InvalidLeverage = 6029 => "The leverage is zero or above the market's maximum",
    RateOutOfRange = 6030 => "A funding rate is beyond 50,000 ppm per period either way",
    RateAboveMax = 6031 => "The quoted funding rate is above the request's maximum",
    MakerCollateralTooLow = 6032 => "The maker's collateral is below size / the market's maximum leverage",
    InvalidSize = 6033 => "The size is zero or above 1,000,000,000 USDC",
    InvalidSide = 6034 => "The side is neither 0 (long) nor 1 (short)",
    ConsentExpired = 6035 => "A consent's deadline has passed",
    InvalidInstructionsSysvar = 6036 => "The instructions sysvar account is not the sysvar or is malformed",
    MissingConsentSignature = 6037 => "No Ed25519 signature-verify call precedes this instruction",
    NotEd25519Call = 6038 => "The instruction before this one is not an Ed25519 signature-verify call",
    MalformedEd25519Call = 6039 => "The Ed25519 call's data is malformed",
    ConsentOutsideCall = 6040 => "An offset of the Ed25519 call points outside that call",
    ConsentSignatureMissing = 6041 => "The Ed25519 call holds fewer signatures than this instruction needs",
    ConsentWrongSigner = 6042 => "A consent is signed by another key than the agent's",
    RequestConsentMismatch = 6043 => "The request consent's bytes differ from the instruction's terms",
    QuoteConsentMismatch = 6044 => "The quote consent's bytes differ from the instruction's terms",
    CloseConsentMismatch = 6045 => "The close consent's bytes differ from the instruction's terms",
    WithdrawConsentMismatch = 6046 => "The withdraw consent's bytes differ from the instruction's terms",
    CloseConsentReplayed = 6047 => "The close consent was for an earlier close of this position",
    WithdrawConsentReplayed = 6048 => "The withdraw consent was for an earlier withdrawal of this agent",
    PositionExists = 6049 => "A position exists for this requester and nonce already",
    PositionNotOpen = 6050 => "The position is closed",
    MakerCannotClose = 6051 => "Only the requester closes a position before its term ends",
    InvalidSizePercent = 6052 => "The close percentage is not 1 to 100",
    TermCloseMustBeFull = 6053 => "A position past its term closes in full",
    NotLiquidatable = 6054 => "Neither side of the position is under maintenance",
    RewardToLiquidatedSide = 6055 => "The liquidation reward cannot go to the liquidated side",
    PositionMismatch = 6056 => "A collateral account is not the position's requester's or maker's",
    SelfTrade = 6057 => "The requester and the maker are the same agent",
    InvalidFundingPeriod = 6058 => "The funding period is not a positive number of seconds",
    PriceAccountOwner = 6059 => "The price account is not owned by the configured Pyth receiver",
    PriceLayout = 6060 => "The price account is not a Pyth PriceUpdateV2",
    PriceWrongFeed = 6061 => "The price account is for another feed than the market's",
    PriceStale = 6062 => "The price is older than 60 seconds",
    PriceConfidenceTooWide = 6063 => "The price's confidence interval is wider than 2% of the price",
    PriceNotPositive = 6064 => "The price is zero or negative",
    PriceNotFullyVerified = 6065 => "The price update is only partially verified",
    PriceOverflow = 6066 => "The price does not fit after normalising its exponent to -8",
    MathDomain = 6067 => "The position's numbers are outside what the money rules accept",
    ClockUnavailable = 6068 => "The clock sysvar could not be read",
    PriceOutOfRange = 6069 => "The price is above 100,000,000 (the venue's supported maximum)",
}

impl EscrowError {
    /// The code returned to the runtime.
    #[inline(always)]
    pub const fn code(self) -> u64 {
        self as u32 as u64
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

    #[test]
    fn logs_in_anchors_format() {
        assert_eq!(
            EscrowError::NotAdmin.anchor_log(),
            "AnchorError occurred. Error Code: NotAdmin. Error Number: 6025. \
             Error Message: The signer is not the config's admin."
        );
    }
}

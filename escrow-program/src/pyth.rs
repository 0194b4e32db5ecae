//! Reading a Pyth receiver `PriceUpdateV2` account (SPEC §7 "Prices").
//!
//! The layout, checked with the code search against Pyth's sources
//! (`pyth-crosschain`: `target_chains/solana/pyth_solana_receiver_sdk/src/price_update.rs`
//! for `PriceUpdateV2` and `VerificationLevel`, `pythnet/pythnet_sdk/src/messages.rs`
//! for `PriceFeedMessage`), Borsh, little-endian:
//!
//! ```text
//! [u8; 8]  Anchor discriminator = sha256("account:PriceUpdateV2")[..8]
//! [u8; 32] write_authority
//! verification_level: u8 tag; 0 = Partial { num_signatures: u8 } (2 bytes), 1 = Full (1 byte)
//! price_message (PriceFeedMessage, 84 bytes): [u8; 32] feed_id, i64 price, u64 conf,
//!   i32 exponent, i64 publish_time, i64 prev_publish_time, i64 ema_price, u64 ema_conf
//! u64 posted_slot
//! ```
//!
//! The receiver allocates `PriceUpdateV2::LEN` = 134 bytes whatever the level, so a
//! `Full` account ends with one unused byte; anything longer than the encoding needs
//! is accepted (Borsh ignores trailing bytes the same way).
//!
//! The checks are the daemon's (`perpd.oracle.unusable_reason`, SPEC §5), on the
//! price normalised to exponent -8 exactly as `perpd.oracle.normalize` and
//! `perpd.pyth.normalize_conf` do (price truncated, confidence rounded up), so the
//! chain and the daemon accept and refuse the same prices: not older than 60 s
//! (`now - publish_time <= 60`, as the SDK's `get_price_no_older_than`; a publish
//! time ahead of the clock is accepted like there), confidence at most 2 % of the
//! price, price > 0. Only `Full` verification is accepted (the SDK's default): a
//! `Partial` update parses and is refused with `NotFullyVerified`. The owner (the
//! configured receiver program) is the caller's check.

use crate::math::checked_mul;

/// sha256("account:PriceUpdateV2")[..8].
pub const PRICE_UPDATE_V2_DISCRIMINATOR: [u8; 8] = [34, 241, 35, 99, 157, 126, 244, 205];
/// Oldest usable price, in seconds behind the clock.
pub const MAX_AGE_S: i64 = 60;
/// Widest usable confidence, in basis points of the price (2 %).
pub const MAX_CONF_BPS: u64 = 200;
/// The exponent every price is normalised to (SPEC §2).
pub const PRICE_EXPONENT: i32 = -8;
/// The largest usable price at exponent -8: 100,000,000 USD (the daemon's `perpd.bounds.MAX_PRICE`).
pub const MAX_PRICE: u64 = 10_000_000_000_000_000;

const _: () = assert!(10_000 % MAX_CONF_BPS == 0);
/// `conf <= price * MAX_CONF_BPS / 10_000` is `conf <= floor(price / CONF_DIVISOR)`.
const CONF_DIVISOR: u64 = 10_000 / MAX_CONF_BPS;

const VERIFICATION_AT: usize = 8 + 32;
const MESSAGE_LEN: usize = 84;
const TAG_PARTIAL: u8 = 0;
const TAG_FULL: u8 = 1;

/// Why a price account cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PythError {
    /// Too short, wrong discriminator, or an unknown verification level.
    BadLayout,
    /// The update is for another feed than the market's.
    WrongFeed,
    /// Published more than 60 s before `now`.
    Stale,
    /// Confidence wider than 2 % of the price.
    WideConfidence,
    /// Price zero or negative (after normalisation).
    NonPositive,
    /// Price above `MAX_PRICE` (after normalisation): past what the venue stores and
    /// settles in 64 bits (the daemon's `perpd.bounds`), so both refuse it alike.
    OutOfRange,
    /// Only partially verified (fewer Wormhole guardian signatures than a quorum).
    NotFullyVerified,
    /// The normalised price or confidence does not fit in a `u64`.
    Overflow,
}

/// A usable price, exponent -8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub price: u64,
    pub conf: u64,
    pub publish_time: i64,
}

#[inline(always)]
fn le_u64(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(b)
}

/// `10^n` for `n <= 19` (the largest power of ten in a `u64`), from a table:
/// `u64::checked_pow`/`checked_mul` lower to 128-bit multiplies on BPF.
#[inline(always)]
fn pow10(n: u32) -> Option<u64> {
    const POWERS: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    POWERS.get(n as usize).copied()
}

/// `value × 10^shift`, rounding down (or up if `ceil`) when `shift < 0`.
#[inline(always)]
fn rescale(value: u64, shift: i64, ceil: bool) -> Result<u64, PythError> {
    if shift >= 0 {
        if value == 0 {
            return Ok(0);
        }
        let factor = u32::try_from(shift).ok().and_then(pow10).ok_or(PythError::Overflow)?;
        return checked_mul(value, factor).ok_or(PythError::Overflow);
    }
    let divisor = match u32::try_from(-shift).ok().and_then(pow10) {
        Some(d) => d,
        // 10^20 and beyond exceed every u64: the quotient is 0, rounded up 1
        None => return Ok((ceil && value > 0) as u64),
    };
    let q = value / divisor;
    Ok(if ceil && q * divisor != value { q + 1 } else { q })
}

/// Parses the account data (owner is checked by the caller), both verification-level
/// encodings (Partial{num_signatures:u8} = 2 bytes, Full = 1 byte); checks the feed id,
/// age <= 60 s against `now`, confidence <= 2 % of the price, price > 0; normalises the
/// exponent to -8. Requires Full verification (Pyth's own SDK default); Partial parses
/// and is refused with NotFullyVerified.
#[inline(always)]
pub fn read_price(data: &[u8], feed_id: &[u8; 32], now: i64) -> Result<Price, PythError> {
    if data.len() < VERIFICATION_AT + 1 || data[..8] != PRICE_UPDATE_V2_DISCRIMINATOR {
        return Err(PythError::BadLayout);
    }
    let (message_at, full) = match data[VERIFICATION_AT] {
        TAG_PARTIAL => (VERIFICATION_AT + 2, false),
        TAG_FULL => (VERIFICATION_AT + 1, true),
        _ => return Err(PythError::BadLayout),
    };
    // the message and the posted_slot after it
    if data.len() < message_at + MESSAGE_LEN + 8 {
        return Err(PythError::BadLayout);
    }
    if !full {
        return Err(PythError::NotFullyVerified);
    }
    let m = &data[message_at..message_at + MESSAGE_LEN];
    if m[..32] != feed_id[..] {
        return Err(PythError::WrongFeed);
    }
    let raw_price = le_u64(m, 32) as i64;
    let raw_conf = le_u64(m, 40);
    let exponent = i32::from_le_bytes([m[48], m[49], m[50], m[51]]);
    let publish_time = le_u64(m, 52) as i64;
    if raw_price <= 0 {
        return Err(PythError::NonPositive);
    }
    let shift = exponent as i64 - PRICE_EXPONENT as i64;
    let price = rescale(raw_price as u64, shift, false)?;
    if price == 0 {
        return Err(PythError::NonPositive);
    }
    if price > MAX_PRICE {
        return Err(PythError::OutOfRange);
    }
    if now.saturating_sub(publish_time) > MAX_AGE_S {
        return Err(PythError::Stale);
    }
    let conf = rescale(raw_conf, shift, true)?;
    if conf > price / CONF_DIVISOR {
        return Err(PythError::WideConfidence);
    }
    Ok(Price { price, conf, publish_time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::json::{self, Value};

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/pyth_price_update.json");

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn error_named(name: &str) -> PythError {
        use PythError::*;
        match name {
            "BadLayout" => BadLayout,
            "WrongFeed" => WrongFeed,
            "Stale" => Stale,
            "WideConfidence" => WideConfidence,
            "NonPositive" => NonPositive,
            "OutOfRange" => OutOfRange,
            "NotFullyVerified" => NotFullyVerified,
            "Overflow" => Overflow,
            other => panic!("unknown error {other}"),
        }
    }

    /// Every case of the fixture written by `python -m tests.chain.pyth_vectors`
    /// (account bytes from `perpd.chain.price_update_v2`, expectations from the
    /// daemon's own normalisation and usability rules).
    #[test]
    fn agrees_with_the_python_fixture() {
        let text = std::fs::read_to_string(FIXTURE).expect("pyth fixture");
        let doc = json::parse(&text).unwrap();
        let cases = doc.get("cases").as_array();
        assert!(cases.len() >= 20, "{} cases", cases.len());
        let mut seen = std::collections::BTreeSet::new();
        for case in cases {
            let name = case.get("name").as_str();
            let data = hex(case.get("data").as_str());
            let feed: [u8; 32] = hex(case.get("feed_id").as_str()).try_into().unwrap();
            let now = case.get("now").as_i64();
            let got = read_price(&data, &feed, now);
            let expected = case.get("expected");
            let want = match expected.get_opt("error") {
                Some(Value::Str(e)) => Err(error_named(e)),
                _ => Ok(Price {
                    price: expected.get("price").as_u64(),
                    conf: expected.get("conf").as_u64(),
                    publish_time: expected.get("publish_time").as_i64(),
                }),
            };
            assert_eq!(got, want, "case {name}");
            seen.insert(match got {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e:?}"),
            });
        }
        // every refusal reason is exercised through real account bytes
        for reason in [
            "ok",
            "BadLayout",
            "WrongFeed",
            "Stale",
            "WideConfidence",
            "NonPositive",
            "OutOfRange",
            "NotFullyVerified",
            "Overflow",
        ] {
            assert!(seen.contains(reason), "no case for {reason}");
        }
    }

    #[test]
    fn rescale_rounds_like_the_daemon() {
        assert_eq!(rescale(123_456_789, -2, false), Ok(1_234_567));
        assert_eq!(rescale(123_456_789, -2, true), Ok(1_234_568));
        assert_eq!(rescale(123_456_700, -2, true), Ok(1_234_567));
        assert_eq!(rescale(7, 3, false), Ok(7_000));
        assert_eq!(rescale(u64::MAX, -19, false), Ok(1));
        assert_eq!(rescale(u64::MAX, -20, false), Ok(0));
        assert_eq!(rescale(u64::MAX, -20, true), Ok(1));
        assert_eq!(rescale(0, -40, true), Ok(0));
        assert_eq!(rescale(0, 40, false), Ok(0));
        assert_eq!(rescale(1, 19, false), Ok(10_000_000_000_000_000_000));
        assert_eq!(rescale(2, 19, false), Err(PythError::Overflow));
        assert_eq!(rescale(1, 20, false), Err(PythError::Overflow));
        assert_eq!(rescale(1, i64::MIN + 1, true), Ok(1));
    }

    #[test]
    fn short_and_foreign_data() {
        let feed = [0u8; 32];
        assert_eq!(read_price(&[], &feed, 0), Err(PythError::BadLayout));
        let mut data = [0u8; 134];
        assert_eq!(read_price(&data, &feed, 0), Err(PythError::BadLayout));
        data[..8].copy_from_slice(&PRICE_UPDATE_V2_DISCRIMINATOR);
        data[40] = 2;
        assert_eq!(read_price(&data, &feed, 0), Err(PythError::BadLayout));
    }
}

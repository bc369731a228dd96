//! `resource.Quantity`: parsing, canonical printing, comparison and arithmetic as upstream.
//!
//! A quantity is an exact decimal (arbitrary-precision unscaled integer times a power
//! of ten) plus the format it was written in (`DecimalSI`, `BinarySI`,
//! `DecimalExponent`), which decides how it prints. Parsing rounds up to nano units,
//! like upstream, and remembers the input text when upstream would (so `"100m"`
//! round-trips as `"100m"` while `"1000m"` prints as `"1"`).

use std::cmp::Ordering;
use std::fmt;

use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};
use serde::{Deserialize, Serialize};

/// The regular expression upstream's error message quotes.
pub const QUANTITY_FORMAT: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Errors from parsing a quantity; messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not have the shape of a quantity.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The numeric part could not be parsed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not a known unit.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity prints: the family of suffixes it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi` (powers of 1024).
    BinarySI,
    /// `12M` (powers of 1000).
    #[default]
    DecimalSI,
}

/// A `resource.Quantity`.
#[derive(Debug, Clone)]
pub struct Quantity {
    /// The value is `unscaled * 10^scale` (upstream's `Scale` convention).
    unscaled: BigInt,
    scale: i64,
    format: Format,
    /// The text upstream keeps from parsing and prints back unchanged.
    cached: Option<String>,
}

/// The largest value a binary-suffixed quantity may hold after parsing (2^63 - 1).
const MAX_ALLOWED: i64 = i64::MAX;

fn pow10(n: u64) -> BigInt {
    num_traits::pow(BigInt::from(10), usize::try_from(n).unwrap_or(usize::MAX))
}

/// Number of decimal digits of `|v|` (0 has one digit).
fn digit_count(v: &BigInt) -> u64 {
    v.abs().to_string().len() as u64
}

impl Quantity {
    /// A quantity of `value` units in `format`.
    pub fn new(value: i64, format: Format) -> Self {
        Self {
            unscaled: BigInt::from(value),
            scale: 0,
            format,
            cached: None,
        }
    }

    /// A quantity of `value` thousandths in `format`.
    pub fn new_milli(value: i64, format: Format) -> Self {
        Self {
            unscaled: BigInt::from(value),
            scale: -3,
            format,
            cached: None,
        }
    }

    /// `value * 10^scale`, printed as `DecimalSI`.
    pub fn new_scaled(value: i64, scale: i32) -> Self {
        Self {
            unscaled: BigInt::from(value),
            scale: i64::from(scale),
            format: Format::DecimalSI,
            cached: None,
        }
    }

    /// The zero quantity.
    pub fn zero() -> Self {
        Self::new(0, Format::DecimalSI)
    }

    /// The format the quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses a quantity such as `100m`, `1.5Gi`, `1e3` or `+2`.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Self {
                cached: Some("0".to_owned()),
                ..Self::zero()
            });
        }
        let parts = split_quantity(s)?;
        let (base, exponent, format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        let shifted = format!("{}{}", parts.num, parts.denom);
        let digits: BigInt = shifted.parse().map_err(|_| QuantityError::Numeric)?;
        let denom_len = i64::try_from(parts.denom.len()).unwrap_or(i64::MAX);

        let mut unscaled = digits;
        let mut scale = -denom_len;
        if base == 10 {
            scale += i64::from(exponent);
        } else {
            unscaled <<= usize::try_from(exponent).unwrap_or(0);
        }
        if !parts.positive {
            unscaled = -unscaled;
        }
        let mut q = Self {
            unscaled,
            scale,
            format,
            cached: None,
        };

        if let Some(cached) = fast_path_cache(s, &parts, &shifted, base, exponent, format) {
            q.cached = cached;
            return Ok(q);
        }

        // The exact path: round up to nano units, cap binary quantities, and print
        // sub-unit binary quantities in decimal.
        if !q.unscaled.is_zero() {
            q.round_up_to_scale(-9);
        }
        if format == Format::BinarySI {
            let magnitude_over_max = q.abs_cmp_i64(MAX_ALLOWED) == Ordering::Greater;
            if magnitude_over_max {
                q.unscaled = if parts.positive {
                    BigInt::from(MAX_ALLOWED)
                } else {
                    -BigInt::from(MAX_ALLOWED)
                };
                q.scale = 0;
            }
            if q.abs_cmp_i64(1) == Ordering::Less && !q.unscaled.is_zero() {
                q.format = Format::DecimalSI;
            }
        }
        Ok(q)
    }

    /// Compares `|self|` with a non-negative integer.
    fn abs_cmp_i64(&self, v: i64) -> Ordering {
        let abs = Self {
            unscaled: self.unscaled.abs(),
            scale: self.scale,
            format: self.format,
            cached: None,
        };
        abs.cmp_value(&Self::new(v, Format::DecimalSI))
    }

    /// Rounds away from zero so that `scale >= min_scale`; returns whether it was exact.
    fn round_up_to_scale(&mut self, min_scale: i64) -> bool {
        if self.scale >= min_scale {
            return true;
        }
        let drop = u64::try_from(min_scale - self.scale).unwrap_or(u64::MAX);
        let negative = self.unscaled.is_negative();
        let magnitude = self.unscaled.abs();
        let (quotient, exact) = if drop > digit_count(&magnitude) {
            (BigInt::zero(), magnitude.is_zero())
        } else {
            let (q, r) = magnitude.div_rem(&pow10(drop));
            (q, r.is_zero())
        };
        let quotient = if exact { quotient } else { quotient + 1 };
        self.unscaled = if negative { -quotient } else { quotient };
        self.scale = min_scale;
        exact
    }

    /// The value with `scale` aligned to `target` (which must not exceed `self.scale`).
    fn unscaled_at(&self, target: i64) -> BigInt {
        let shift = u64::try_from(self.scale - target).unwrap_or(0);
        &self.unscaled * pow10(shift)
    }

    fn cmp_value(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.unscaled, &other.unscaled);
        match a.sign().cmp(&b.sign()) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        if a.is_zero() {
            return Ordering::Equal;
        }
        // Compare orders of magnitude first so wildly different scales never expand.
        let mag_a = digit_count(a) as i64 + self.scale;
        let mag_b = digit_count(b) as i64 + other.scale;
        if mag_a != mag_b {
            let by_magnitude = mag_a.cmp(&mag_b);
            return if a.is_negative() {
                by_magnitude.reverse()
            } else {
                by_magnitude
            };
        }
        let target = self.scale.min(other.scale);
        self.unscaled_at(target).cmp(&other.unscaled_at(target))
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.unscaled.is_zero()
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        if self.unscaled.is_zero() {
            0
        } else if self.unscaled.is_negative() {
            -1
        } else {
            1
        }
    }

    /// Adds `other`; a zero receiver takes `other`'s format, as upstream.
    pub fn add(&mut self, other: &Quantity) {
        if self.is_zero() {
            self.format = other.format;
        }
        let target = self.scale.min(other.scale);
        self.unscaled = self.unscaled_at(target) + other.unscaled_at(target);
        self.scale = target;
        self.cached = None;
    }

    /// Subtracts `other`; a zero receiver takes `other`'s format, as upstream.
    pub fn sub(&mut self, other: &Quantity) {
        if self.is_zero() {
            self.format = other.format;
        }
        let target = self.scale.min(other.scale);
        self.unscaled = self.unscaled_at(target) - other.unscaled_at(target);
        self.scale = target;
        self.cached = None;
    }

    /// Multiplies by an integer.
    pub fn mul(&mut self, factor: i64) {
        self.unscaled *= factor;
        self.cached = None;
    }

    /// Negates the quantity.
    pub fn neg(&mut self) {
        self.unscaled = -std::mem::take(&mut self.unscaled);
        self.cached = None;
    }

    /// Rounds up (away from zero) to a multiple of `10^scale`; returns whether nothing was lost.
    pub fn round_up(&mut self, scale: i32) -> bool {
        if self.scale >= i64::from(scale) {
            return true;
        }
        self.cached = None;
        self.round_up_to_scale(i64::from(scale))
    }

    /// The value in units of `10^scale`, rounded away from zero and saturated to `i64`.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let mut q = self.clone();
        q.round_up_to_scale(i64::from(scale));
        let v = q.unscaled_at(i64::from(scale));
        v.to_i64()
            .unwrap_or(if v.is_negative() { i64::MIN } else { i64::MAX })
    }

    /// The value in whole units, rounded away from zero (`Value()` upstream).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths, rounded away from zero (`MilliValue()` upstream).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// The exact value as an `i64`, when it is a whole number that fits.
    pub fn as_i64(&self) -> Option<i64> {
        if self.scale < 0 {
            let mut q = self.clone();
            return if q.round_up_to_scale(0) {
                q.unscaled.to_i64()
            } else {
                None
            };
        }
        self.unscaled_at(0).to_i64()
    }

    /// An approximate floating-point value.
    pub fn as_f64(&self) -> f64 {
        let base = self.unscaled.to_f64().unwrap_or(f64::NAN);
        let exp =
            i32::try_from(self.scale).unwrap_or(if self.scale > 0 { i32::MAX } else { i32::MIN });
        base * 10f64.powi(exp)
    }

    /// The canonical text upstream prints for this value and format.
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let mut format = self.format;
        let mut integer = None;
        if format == Format::BinarySI {
            let small = self.cmp_value(&Self::new(-1024, Format::DecimalSI)) == Ordering::Greater
                && self.cmp_value(&Self::new(1024, Format::DecimalSI)) == Ordering::Less;
            if small {
                format = Format::DecimalSI;
            } else {
                let mut rounded = self.clone();
                if rounded.round_up_to_scale(0) {
                    integer = Some(rounded.unscaled_at(0));
                } else {
                    format = Format::DecimalSI;
                }
            }
        }
        match (format, integer) {
            (Format::BinarySI, Some(mut amount)) => {
                let mut times = 0;
                let k = BigInt::from(1024);
                loop {
                    let (q, r) = amount.div_rem(&k);
                    if !r.is_zero() || amount.abs() < k {
                        break;
                    }
                    amount = q;
                    times += 1;
                }
                let suffix = match times {
                    1 => "Ki",
                    2 => "Mi",
                    3 => "Gi",
                    4 => "Ti",
                    5 => "Pi",
                    6 => "Ei",
                    // Upstream has no suffix for these and prints the bare number.
                    _ => "",
                };
                format!("{amount}{suffix}")
            }
            _ => {
                let mut mantissa = self.unscaled.clone();
                let mut exponent = self.scale;
                let ten = BigInt::from(10);
                loop {
                    let (q, r) = mantissa.div_rem(&ten);
                    if !r.is_zero() {
                        break;
                    }
                    mantissa = q;
                    exponent += 1;
                }
                while exponent % 3 != 0 {
                    mantissa *= 10;
                    exponent -= 1;
                }
                let suffix = if format == Format::DecimalExponent {
                    if exponent == 0 {
                        String::new()
                    } else {
                        format!("e{exponent}")
                    }
                } else {
                    match exponent {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        18 => "E",
                        // Upstream prints no suffix at 0 and, lacking one, beyond the table.
                        _ => "",
                    }
                    .to_owned()
                };
                format!("{mantissa}{suffix}")
            }
        }
    }

    /// The quantity as a JSON string value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.to_string())
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self::zero()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for Quantity {
    /// Quantities are equal when their values are, whatever their formats.
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_value(other)
    }
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    /// Accepts a string or a bare JSON number, trimming spaces, as upstream does.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.trim().to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => return Ok(Self::zero()),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "invalid quantity: {other}"
                )));
            }
        };
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

struct Parts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Splits text into sign, integer digits (leading zeros dropped), fraction digits and suffix.
fn split_quantity(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts {
            positive,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == num_start {
        "0"
    } else {
        &s[num_start..pos]
    };
    if pos >= end {
        return Ok(Parts {
            positive,
            num,
            denom: "",
            suffix: "",
        });
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Ok(Parts {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `(base, exponent, format)` for a suffix.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            let parsed: i64 = rest.parse().ok()?;
            // Upstream narrows the parsed exponent to 32 bits without a range check.
            let exponent = parsed as i32;
            Some((10, exponent, Format::DecimalExponent))
        }
    }
}

/// Upstream's fast path (small integers) keeps the input text when it is already
/// canonical. Returns `Some(cached)` when that path applies (`cached` may be `None`),
/// or `None` when the exact path must run.
fn fast_path_cache(
    s: &str,
    parts: &Parts<'_>,
    shifted: &str,
    base: u32,
    exponent: i32,
    format: Format,
) -> Option<Option<String>> {
    let total_digits = parts.num.len() + parts.denom.len();
    let denom_len = i64::try_from(parts.denom.len()).ok()?;
    let precision: i64 = match format {
        Format::DecimalExponent | Format::DecimalSI => 18 - i64::try_from(total_digits).ok()?,
        Format::BinarySI => {
            if exponent >= 0 && parts.denom.is_empty() {
                // Upstream computes this with float32 arithmetic truncated to an integer.
                15 - i64::try_from(parts.num.len()).ok()? - (i64::from(exponent) * 3 / 10) - 1
            } else {
                -1
            }
        }
    };
    if precision < 0 {
        return None;
    }
    let scale = if base == 10 {
        i64::from(exponent) - denom_len
    } else {
        -denom_len
    };
    if scale < -9 {
        return None;
    }
    let value: i64 = shifted.parse().ok()?;
    if base == 2 {
        // The multiplication by 2^exponent must fit in an i64, as upstream checks.
        value.checked_mul(1i64.checked_shl(u32::try_from(exponent).ok()?)?)?;
        let keep = exponent % 10 == 0 && value & 0x07 != 0;
        return Some(keep.then(|| s.to_owned()));
    }
    let keep = scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0');
    Some(keep.then(|| s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Parses `input` and checks the text it prints back and its format.
    fn check(input: &str, want: &str, format: Format) {
        let got = q(input);
        assert_eq!(
            (got.to_string(), got.format()),
            (want.to_owned(), format),
            "parsing {input:?}"
        );
    }

    #[test]
    fn parsed_quantities_print_canonically() {
        check("0", "0", Format::DecimalSI);
        check("1000m", "1", Format::DecimalSI);
        check("100m", "100m", Format::DecimalSI);
        check("0.1", "100m", Format::DecimalSI);
        check("1.5", "1500m", Format::DecimalSI);
        check("1.5Gi", "1536Mi", Format::BinarySI);
        check("1Gi", "1Gi", Format::BinarySI);
        check("1024Mi", "1Gi", Format::BinarySI);
        check("1023Ki", "1023Ki", Format::BinarySI);
        check("0.5Mi", "512Ki", Format::BinarySI);
        check("512", "512", Format::DecimalSI);
        check("1k", "1k", Format::DecimalSI);
        check("1000", "1k", Format::DecimalSI);
        check("50k", "50k", Format::DecimalSI);
        check("5000k", "5M", Format::DecimalSI);
        check("1e3", "1e3", Format::DecimalExponent);
        check("1E3", "1E3", Format::DecimalExponent);
        check("1.2e3", "1200", Format::DecimalExponent);
        check("1e-3", "1e-3", Format::DecimalExponent);
        check("100.035k", "100.035k", Format::DecimalSI);
        check("100.0351k", "100035100m", Format::DecimalSI);
        check("3.001n", "4n", Format::DecimalSI);
        check("0.0000000001", "1n", Format::DecimalSI);
        check("0.00000012345", "124n", Format::DecimalSI);
        check("1.1E-9", "2e-9", Format::DecimalExponent);
        check("9Ei", "9223372036854775807", Format::BinarySI);
        check(
            "9223372036854775807Ki",
            "9223372036854775807",
            Format::BinarySI,
        );
        check("12E", "12E", Format::DecimalSI);
        check("0.000000000001Ki", "2n", Format::DecimalSI);
        check(".001", "1m", Format::DecimalSI);
        check("1.", "1.", Format::DecimalSI);
        check("1.G", "1.G", Format::DecimalSI);
        check("1.0G", "1G", Format::DecimalSI);
        check("-1", "-1", Format::DecimalSI);
        check("-100m", "-100m", Format::DecimalSI);
        check("-1.5Gi", "-1536Mi", Format::BinarySI);
        check("+1", "+1", Format::DecimalSI);
        check("01", "01", Format::DecimalSI);
        check("1024", "1024", Format::DecimalSI);
        check("500m", "500m", Format::DecimalSI);
        check("2000Mi", "2000Mi", Format::BinarySI);
        check("5Mi", "5Mi", Format::BinarySI);
        check("0Ki", "0", Format::BinarySI);
        check("0.5Ki", "512", Format::BinarySI);
        check("1.5Ki", "1536", Format::BinarySI);
        check("1000E", "1", Format::DecimalSI);
    }

    #[test]
    fn constructed_values_print_in_the_shortest_canonical_form() {
        let dec = |v: i64, scale: i64, format| Quantity {
            unscaled: BigInt::from(v),
            scale,
            format,
            cached: None,
        };
        let cases = [
            (dec(1024 * 1024 * 1024, 0, Format::BinarySI), "1Gi"),
            (dec(300 * 1024 * 1024, 0, Format::BinarySI), "300Mi"),
            (dec(5, 0, Format::BinarySI), "5"),
            (dec(500, -3, Format::BinarySI), "500m"),
            (dec(1000, 6, Format::DecimalSI), "1G"),
            (dec(1080, -3, Format::DecimalSI), "1080m"),
            (dec(108, -2, Format::DecimalSI), "1080m"),
            (dec(1_234_567, -3, Format::BinarySI), "1234567m"),
            (dec(1025, 0, Format::BinarySI), "1025"),
            (dec(0, 0, Format::BinarySI), "0"),
            (dec(1, 9, Format::DecimalExponent), "1e9"),
            (dec(80, -3, Format::DecimalExponent), "80e-3"),
            (dec(300, 6, Format::DecimalExponent), "300e6"),
            (dec(10800, -10, Format::DecimalSI), "1080n"),
            (dec(80, -6, Format::DecimalSI), "80u"),
        ];
        for (quantity, want) in cases {
            assert_eq!(quantity.to_string(), want, "{quantity:?}");
            // Canonical text parses back to itself and is kept verbatim.
            assert_eq!(q(want).to_string(), want);
        }
    }

    #[test]
    fn malformed_quantities_are_refused_with_upstream_messages() {
        for bad in ["", "1.1.M", "1+1.0M", "aoeu", " 1", "1 ", "1.5.5"] {
            assert_eq!(Quantity::parse(bad).map_err(|e| e.to_string()), Err(
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".to_owned()
            ), "{bad:?}");
        }
        for bad in [
            "0.1mi", "0.1am", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1Kb",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Quantity::parse("1i"), Err(QuantityError::Suffix));
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
    }

    #[test]
    fn quantities_compare_by_value_across_formats() {
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1"), q("1000m"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("1m"));
        assert!(q("1e100") > q("1E"));
        assert!(q("-1e100") < q("-1E"));
        assert!(q("1n") > Quantity::zero());
    }

    #[test]
    fn arithmetic_keeps_exact_values_and_format_rules() {
        let mut a = q("100m");
        a.add(&q("900m"));
        assert_eq!(a.to_string(), "1");
        let mut b = Quantity::zero();
        b.add(&q("1Gi"));
        assert_eq!(
            (b.to_string(), b.format()),
            ("1Gi".to_owned(), Format::BinarySI)
        );
        let mut c = q("1Gi");
        c.sub(&q("512Mi"));
        assert_eq!(c.to_string(), "512Mi");
        let mut d = q("1");
        d.sub(&q("2"));
        assert_eq!(d.to_string(), "-1");
        let mut e = q("250m");
        e.mul(4);
        assert_eq!(e.to_string(), "1");
        let mut f = q("1");
        f.neg();
        assert_eq!(f.to_string(), "-1");
    }

    #[test]
    fn values_round_away_from_zero() {
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("1001m").value(), 2);
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("1e30").value(), i64::MAX);
        assert_eq!(q("1k").as_i64(), Some(1000));
        assert_eq!(q("1m").as_i64(), None);
        let mut r = q("1234m");
        assert!(!r.round_up(0));
        assert_eq!(r.to_string(), "2");
    }

    #[test]
    fn quantities_serialise_as_strings_and_accept_numbers() {
        let v: Quantity = serde_json::from_str("\"1.5Gi\"").expect("string");
        assert_eq!(serde_json::to_string(&v).expect("ser"), "\"1536Mi\"");
        let n: Quantity = serde_json::from_str("2").expect("number");
        assert_eq!(n.to_string(), "2");
        let spaced: Quantity = serde_json::from_str("\" 100m \"").expect("trimmed");
        assert_eq!(spaced.to_string(), "100m");
        assert!(serde_json::from_str::<Quantity>("\"abc\"").is_err());
    }
}

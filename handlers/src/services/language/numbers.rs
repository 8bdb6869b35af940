//! Numbers as each locale writes them. fluent-bundle formats numbers the same in every locale
//! ("2.5", "7:5"), so a player reading German got "2.5 Kronen". This formatter, set on every
//! bundle, writes the locale's decimal separator and digit grouping (CLDR symbols for the
//! languages a studio is likely to ship; others write as English does) and honours the
//! `NUMBER()` options Fluent defines: `minimumIntegerDigits` (a clock's "7:05"),
//! `minimumFractionDigits`, `maximumFractionDigits` and `useGrouping`.

use fluent_bundle::FluentValue;
use fluent_bundle::memoizer::MemoizerKind as _;
use fluent_bundle::types::FluentNumber;
use unic_langid::LanguageIdentifier;

/// How a locale writes numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbols {
    decimal: char,
    group: char,
    /// Digits the integer part needs before it is grouped (CLDR's minimum grouping digits plus
    /// three: Polish and Spanish write 1000 but 10 000).
    group_from: usize,
}

impl Symbols {
    /// The symbols of `language` (a language subtag).
    pub fn of(language: &str) -> Symbols {
        const NBSP: char = '\u{a0}';
        const NARROW_NBSP: char = '\u{202f}';
        let (decimal, group, group_from) = match language {
            "de" | "it" | "nl" | "pt" | "id" | "tr" => (',', '.', 4),
            "es" => (',', '.', 5),
            "fr" => (',', NARROW_NBSP, 4),
            "pl" => (',', NBSP, 5),
            "ru" | "uk" | "cs" | "sv" | "fi" | "nb" => (',', NBSP, 4),
            _ => ('.', ',', 4),
        };
        Symbols {
            decimal,
            group,
            group_from,
        }
    }

    /// `n` written by these symbols.
    pub fn format(&self, n: &FluentNumber) -> String {
        let o = &n.options;
        let value = n.value;
        let mut text = match o.maximum_fraction_digits {
            Some(max) => {
                let fixed = format!("{:.*}", max.min(20), value.abs());
                match fixed.split_once('.') {
                    // Trailing zeros beyond the minimum go.
                    Some((int, frac)) => {
                        let keep = o.minimum_fraction_digits.unwrap_or(0);
                        let trimmed = frac.trim_end_matches('0');
                        let frac = if trimmed.len() < keep {
                            &frac[..keep.min(frac.len())]
                        } else {
                            trimmed
                        };
                        if frac.is_empty() {
                            int.to_owned()
                        } else {
                            format!("{int}.{frac}")
                        }
                    }
                    None => fixed,
                }
            }
            None => value.abs().to_string(),
        };
        if let Some(min) = o.minimum_fraction_digits {
            let have = text.split_once('.').map_or(0, |(_, f)| f.len());
            if have < min {
                if have == 0 {
                    text.push('.');
                }
                text.push_str(&"0".repeat(min - have));
            }
        }
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
            None => (text, None),
        };
        let int = match o.minimum_integer_digits {
            Some(min) if int.len() < min => format!("{}{int}", "0".repeat(min - int.len())),
            _ => int,
        };
        let int = if o.use_grouping && int.len() >= self.group_from {
            let mut out = String::new();
            for (i, c) in int.chars().enumerate() {
                if i > 0 && (int.len() - i) % 3 == 0 {
                    out.push(self.group);
                }
                out.push(c);
            }
            out
        } else {
            int
        };
        let sign = if value.is_sign_negative() && value != 0.0 {
            "-"
        } else {
            ""
        };
        match frac {
            Some(f) => format!("{sign}{int}{}{f}", self.decimal),
            None => format!("{sign}{int}"),
        }
    }
}

impl intl_memoizer::Memoizable for Symbols {
    type Args = ();
    type Error = ();

    fn construct(lang: LanguageIdentifier, (): ()) -> Result<Self, ()> {
        Ok(Symbols::of(lang.language.as_str()))
    }
}

/// Minor units of money in one crown (the price catalog's unit: 100 minor units = 1 crown).
pub const MINOR_PER_CROWN: f64 = 100.0;

/// `CROWNS($amount)`: an amount of money in minor units, as the API gives it, as crowns: whole
/// crowns with no decimals ("3 crowns"), else two ("2.50 crowns", "2,50 Kronen"). Plural
/// selectors choose on the crowns.
pub fn crowns<'a>(amount: Option<&FluentValue<'a>>) -> FluentValue<'a> {
    match amount {
        Some(FluentValue::Number(n)) if n.value.is_finite() => {
            let value = n.value / MINOR_PER_CROWN;
            let decimals = (value.fract() != 0.0).then_some(2);
            FluentValue::Number(FluentNumber::new(
                value,
                fluent_bundle::types::FluentNumberOptions {
                    minimum_fraction_digits: decimals,
                    maximum_fraction_digits: Some(2),
                    ..Default::default()
                },
            ))
        }
        _ => FluentValue::Error,
    }
}

/// The bundles' formatter: numbers by their locale's symbols, everything else as Fluent does.
pub fn format(
    value: &FluentValue,
    memoizer: &intl_memoizer::concurrent::IntlLangMemoizer,
) -> Option<String> {
    match value {
        FluentValue::Number(n) => memoizer
            .with_try_get_threadsafe::<Symbols, _, _>((), |s| s.format(n))
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use fluent_bundle::types::FluentNumberOptions;

    use super::*;

    fn n(value: f64, o: FluentNumberOptions) -> FluentNumber {
        FluentNumber::new(value, o)
    }

    #[test]
    fn each_locale_writes_numbers_its_way() {
        let plain = FluentNumberOptions::default();
        let (en, de, fr, pl) = (
            Symbols::of("en"),
            Symbols::of("de"),
            Symbols::of("fr"),
            Symbols::of("pl"),
        );
        assert_eq!(en.format(&n(2.5, plain.clone())), "2.5");
        assert_eq!(de.format(&n(2.5, plain.clone())), "2,5");
        assert_eq!(en.format(&n(1234567.0, plain.clone())), "1,234,567");
        assert_eq!(de.format(&n(1234567.25, plain.clone())), "1.234.567,25");
        assert_eq!(fr.format(&n(12345.5, plain.clone())), "12\u{202f}345,5");
        assert_eq!(pl.format(&n(1000.0, plain.clone())), "1000");
        assert_eq!(pl.format(&n(10000.0, plain.clone())), "10\u{a0}000");
        assert_eq!(en.format(&n(-3.0, plain.clone())), "-3");
        assert_eq!(en.format(&n(0.0, plain.clone())), "0");
        let clock = FluentNumberOptions {
            minimum_integer_digits: Some(2),
            ..FluentNumberOptions::default()
        };
        assert_eq!(en.format(&n(5.0, clock.clone())), "05");
        assert_eq!(en.format(&n(45.0, clock)), "45");
        let money = FluentNumberOptions {
            minimum_fraction_digits: Some(2),
            maximum_fraction_digits: Some(2),
            ..FluentNumberOptions::default()
        };
        assert_eq!(de.format(&n(2.5, money.clone())), "2,50");
        assert_eq!(en.format(&n(1.005, money.clone())), "1.00");
        assert_eq!(en.format(&n(1999.0, money)), "1,999.00");
        let ungrouped = FluentNumberOptions {
            use_grouping: false,
            ..FluentNumberOptions::default()
        };
        assert_eq!(en.format(&n(12345.0, ungrouped)), "12345");
    }
}

//! Public holidays on La Réunion (see `DOMAIN.md`): the fixed dates, 20 December included, and
//! the Easter-based ones from the Gregorian computus. Reused by the support calendar.

use jiff::ToSpan as _;
use jiff::civil::Date;

/// Easter Sunday of `year` (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
/// `None` outside jiff's date range.
pub fn easter_sunday(year: i16) -> Option<Date> {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

/// The public holidays of `year` on La Réunion, in date order, with their French names.
pub fn public_holidays(year: i16) -> Vec<(Date, &'static str)> {
    let fixed: [(i8, i8, &str); 9] = [
        (1, 1, "Jour de l'an"),
        (5, 1, "Fête du travail"),
        (5, 8, "Victoire 1945"),
        (7, 14, "Fête nationale"),
        (8, 15, "Assomption"),
        (11, 1, "Toussaint"),
        (11, 11, "Armistice 1918"),
        (12, 20, "Fête de l'abolition de l'esclavage"),
        (12, 25, "Noël"),
    ];
    let mut days: Vec<(Date, &'static str)> = fixed
        .iter()
        .filter_map(|&(m, d, name)| Date::new(year, m, d).ok().map(|date| (date, name)))
        .collect();
    if let Some(easter) = easter_sunday(year) {
        for (offset, name) in [
            (1, "Lundi de Pâques"),
            (39, "Ascension"),
            (50, "Lundi de Pentecôte"),
        ] {
            if let Ok(date) = easter.checked_add(offset.days()) {
                days.push((date, name));
            }
        }
    }
    days.sort();
    days
}

/// Whether `date` is a public holiday on La Réunion.
pub fn is_public_holiday(date: Date) -> bool {
    public_holidays(date.year()).iter().any(|(d, _)| *d == date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn computus_matches_known_easters() {
        for (year, month, day) in [
            (2000, 4, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(year), Some(date(year, month, day)), "{year}");
        }
    }

    #[test]
    fn reunion_holidays_of_2026() {
        let days: Vec<Date> = public_holidays(2026).into_iter().map(|(d, _)| d).collect();
        assert_eq!(days.len(), 12);
        for d in [
            date(2026, 4, 6),   // Easter Monday
            date(2026, 5, 14),  // Ascension
            date(2026, 5, 25),  // Whit Monday
            date(2026, 12, 20), // abolition of slavery, Réunion only
        ] {
            assert!(is_public_holiday(d), "{d}");
        }
        assert!(!is_public_holiday(date(2026, 4, 7)));
    }
}

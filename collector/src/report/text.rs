//! The report's French: what each tier covers (from the MSP's service description), support
//! hours, and how times, durations and percentages are written.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vigie_domain::Tier;

pub fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Cmp0 => "À la carte (CMP0)",
        Tier::Cmp1 => "SAV illimité + sauvegarde (CMP1)",
        Tier::Cmp3 => "Infogérance Prisme (CMP3)",
    }
}

/// What the contract covers, in the service description's words.
pub fn tier_coverage(tier: Tier) -> &'static str {
    match tier {
        Tier::Cmp0 => {
            "Maintenance corrective planifiée et non planifiée, facturée au temps passé \
             (distanciel ou présentiel), déplacement et matériel hors garantie en sus. Ce rapport \
             présente l'état du parc : sauvegardes, maintenance préventive et suivi des tickets ne \
             font pas partie de ce contrat."
        }
        Tier::Cmp1 => {
            "Maintenance corrective planifiée et non planifiée (SAV illimité) et sauvegarde assurée \
             par des tâches planifiées et organisées par nos soins. Le suivi des mises à jour \
             systèmes, antivirus et logiciels métiers n'est pas inclus à ce niveau."
        }
        Tier::Cmp3 => {
            "Maintenance préventive, corrective et curative : suivi des mises à jour systèmes, \
             antivirus, logiciels métiers et sauvegardes, et supervision de tous les équipements \
             connectés au réseau local du cabinet, imagerie médicale comprise. Support prioritaire."
        }
    }
}

pub fn support_hours(tier: Tier) -> &'static str {
    match tier {
        Tier::Cmp0 => "lun.-ven. 9h-12h et 13h30-16h",
        Tier::Cmp1 | Tier::Cmp3 => {
            "lun.-ven. 7h-20h, sam. 7h-16h, dim. et jours fériés 9h-12h à distance uniquement"
        }
    }
}

/// "30/11/2026 14:05", in `zone`.
pub fn local(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned_datetime(zone.clone())
        .strftime("%d/%m/%Y %H:%M")
        .to_string()
}

/// "30/11/2026", in `zone`.
pub fn local_date(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned_datetime(zone.clone())
        .strftime("%d/%m/%Y")
        .to_string()
}

/// "3 h 05 min", "45 min", "2 j 4 h".
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, hours, minutes) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if days >= 2 {
        format!("{days} j {hours} h")
    } else if s >= 3600 {
        format!("{} h {minutes:02} min", s / 3600)
    } else {
        format!("{minutes} min")
    }
}

/// Whole hours, as the backup figures print them: "49 h".
pub fn hours(seconds: i64) -> String {
    format!("{} h", seconds.max(0) / 3600)
}

/// "99,5 %" (one decimal, French comma).
pub fn percent_1(value: f64) -> String {
    format!("{value:.1} %").replace('.', ",")
}

/// "3 avertissements", "1 échec".
pub fn count(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn yes_no(value: bool) -> &'static str {
    if value { "oui" } else { "non" }
}

pub fn device_kind(kind: &str) -> &str {
    match kind {
        "imaging-modality" => "modalité d'imagerie",
        "pacs" => "PACS",
        "router" => "routeur",
        "switch" => "commutateur",
        "printer" => "imprimante",
        "nas" => "NAS",
        "ups" => "onduleur",
        "other" => "autre",
        other => other,
    }
}

pub fn role(role: &str) -> &str {
    match role {
        "workstation" => "poste",
        "server" => "serveur",
        "imaging" => "imagerie",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45 * 60), "45 min");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3 h 05 min");
        assert_eq!(duration(30 * 3600), "30 h 00 min");
        assert_eq!(duration(52 * 3600), "2 j 4 h");
        assert_eq!(hours(49 * 3600 + 59 * 60), "49 h");
        assert_eq!(percent_1(99.46_f64.round_to_one()), "99,5 %");
    }

    trait RoundToOne {
        fn round_to_one(self) -> f64;
    }
    impl RoundToOne for f64 {
        fn round_to_one(self) -> f64 {
            (self * 10.0).round() / 10.0
        }
    }
}

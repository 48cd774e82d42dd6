//! Who may open the state folder on Windows, read from the SDDL that `icacls DIR /save FILE`
//! writes (UTF-16LE: one line with the name, one with `D:PAI(A;OICI;FA;;;SY)...`). Pure, so
//! it is tested on Linux with real-shaped files; SIDs, not account names, so a French Windows
//! ("AUTORITE NT\Système") reads the same.

pub const SID_LOCAL_SYSTEM: &str = "S-1-5-18";
pub const SID_ADMINISTRATORS: &str = "S-1-5-32-544";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SddlError {
    #[error("icacls wrote nothing")]
    Empty,
    #[error("no access list (D:) in {0:?}")]
    NoDacl(String),
    #[error("unreadable access entry {0:?}")]
    BadAce(String),
}

/// One "allow" entry of the access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A full SID (`S-1-5-32-545`), abbreviations expanded.
    pub sid: String,
    pub rights: String,
}

/// The folder's access list: `None` for a null DACL (`D:NO_ACCESS_CONTROL`: everyone may do
/// everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dacl {
    pub grants: Option<Vec<Grant>>,
}

/// Reads the output file of `icacls DIR /save FILE`: UTF-16LE with or without BOM (or UTF-8,
/// as some tools rewrite it), the SDDL on the line after the name.
pub fn parse_icacls_save(bytes: &[u8]) -> Result<Dacl, SddlError> {
    let text = crate::text::decode(bytes);
    let sddl = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("D:") || line.starts_with("O:") || line.starts_with("G:"))
        .ok_or(SddlError::Empty)?;
    parse_dacl(sddl)
}

/// Parses the `D:` part of an SDDL string.
pub fn parse_dacl(sddl: &str) -> Result<Dacl, SddlError> {
    let start = find_outside_parens(sddl, "D:").ok_or_else(|| SddlError::NoDacl(sddl.into()))?;
    let rest = &sddl[start + 2..];
    let end = find_outside_parens(rest, "S:").unwrap_or(rest.len());
    let dacl = &rest[..end];
    let flags_end = dacl.find('(').unwrap_or(dacl.len());
    if dacl[..flags_end].contains("NO_ACCESS_CONTROL") {
        return Ok(Dacl { grants: None });
    }
    let mut grants = Vec::new();
    let mut aces = &dacl[flags_end..];
    while let Some(open) = aces.find('(') {
        let close = aces[open..]
            .find(')')
            .map(|c| open + c)
            .ok_or_else(|| SddlError::BadAce(aces.into()))?;
        let ace = &aces[open + 1..close];
        let fields: Vec<&str> = ace.split(';').collect();
        if fields.len() < 6 {
            return Err(SddlError::BadAce(ace.into()));
        }
        // A = allow, OA = object allow; D/OD (deny) and audit entries grant nothing.
        if matches!(fields[0], "A" | "OA") {
            grants.push(Grant {
                sid: expand_sid(fields[5]),
                rights: fields[2].to_owned(),
            });
        }
        aces = &aces[close + 1..];
    }
    Ok(Dacl {
        grants: Some(grants),
    })
}

fn find_outside_parens(text: &str, needle: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 && text[index..].starts_with(needle) => return Some(index),
            _ => {}
        }
    }
    None
}

/// The SDDL abbreviations icacls writes for well-known accounts.
fn expand_sid(sid: &str) -> String {
    let full = match sid {
        "SY" => SID_LOCAL_SYSTEM,
        "BA" => SID_ADMINISTRATORS,
        "BU" => "S-1-5-32-545",
        "BG" => "S-1-5-32-546",
        "PU" => "S-1-5-32-547",
        "AU" => "S-1-5-11",
        "WD" => "S-1-1-0",
        "CO" => "S-1-3-0",
        "CG" => "S-1-3-1",
        "OW" => "S-1-3-4",
        "IU" => "S-1-5-4",
        "NU" => "S-1-5-2",
        "AN" => "S-1-5-7",
        "LS" => "S-1-5-19",
        "NS" => "S-1-5-20",
        "RD" => "S-1-5-32-555",
        other => other,
    };
    full.to_owned()
}

/// What a well-known SID is called, for the refusal a technician reads.
fn describe(sid: &str) -> String {
    let name = match sid {
        "S-1-5-32-545" => "Utilisateurs/Users",
        "S-1-5-11" => "Authenticated Users",
        "S-1-1-0" => "Everyone/Tout le monde",
        "S-1-3-0" => "CREATOR OWNER",
        "S-1-5-32-546" => "Guests/Invités",
        "S-1-5-4" => "INTERACTIVE",
        _ => return sid.to_owned(),
    };
    format!("{sid} ({name})")
}

/// The accounts other than SYSTEM and Administrators that the list lets in; empty is safe.
/// Any allow entry counts, whatever its rights: the folder is the agent's alone.
pub fn others_allowed(dacl: &Dacl) -> Vec<String> {
    match &dacl.grants {
        None => vec!["Everyone (no access list: NO_ACCESS_CONTROL)".to_owned()],
        Some(grants) => {
            let mut others: Vec<String> = Vec::new();
            for grant in grants {
                let name = describe(&grant.sid);
                if grant.sid != SID_LOCAL_SYSTEM
                    && grant.sid != SID_ADMINISTRATORS
                    && !others.contains(&name)
                {
                    others.push(name);
                }
            }
            others
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    fn check(saved: &str, others: &[&str]) {
        let dacl = parse_icacls_save(&utf16le(saved)).expect("parses");
        assert_eq!(others_allowed(&dacl), others, "{saved}");
    }

    #[test]
    fn verdicts_on_real_shaped_icacls_save_files() {
        // After `icacls DIR /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F`.
        check("state\r\nD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)\r\n", &[]);
        // A fresh folder under C:\ProgramData (inherited entries).
        check(
            "state\r\nD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)(A;CIID;DCLCRPCR;;;BU)\r\n",
            &[
                "S-1-3-0 (CREATOR OWNER)",
                "S-1-5-32-545 (Utilisateurs/Users)",
            ],
        );
        // Full SIDs, a deny entry (grants nothing), a domain group.
        check(
            "state\r\nD:P(D;;FA;;;WD)(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-21-1-2-3-1107)\r\n",
            &["S-1-5-21-1-2-3-1107"],
        );
        check(
            "state\r\nD:NO_ACCESS_CONTROL\r\n",
            &["Everyone (no access list: NO_ACCESS_CONTROL)"],
        );
        // Owner, group and an audit list around the DACL.
        check(
            "state\r\nO:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)S:AI(AU;SA;FA;;;WD)\r\n",
            &[],
        );
    }

    #[test]
    fn empty_or_broken_files_are_errors() {
        assert_eq!(parse_icacls_save(b""), Err(SddlError::Empty));
        assert_eq!(
            parse_icacls_save(&utf16le("state\r\n")),
            Err(SddlError::Empty)
        );
        assert!(matches!(
            parse_icacls_save(&utf16le("state\r\nD:P(A;OICI;FA;;SY\r\n")),
            Err(SddlError::BadAce(_))
        ));
        assert!(matches!(
            parse_icacls_save(&utf16le("state\r\nD:P(A;OICI)\r\n")),
            Err(SddlError::BadAce(_))
        ));
    }

    #[test]
    fn utf8_and_bomless_files_read_too() {
        let dacl =
            parse_icacls_save(b"state\nD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BU)\n").expect("utf-8");
        assert_eq!(others_allowed(&dacl), ["S-1-5-32-545 (Utilisateurs/Users)"]);
    }
}

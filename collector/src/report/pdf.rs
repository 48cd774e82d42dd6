//! The report as a PDF (A4, French), drawn with krilla: text in the DejaVu fonts embedded in
//! the binary (subset into the file, so no system font is ever read), charts as vector shapes
//! that stay readable printed in black and white: every day of a backup strip carries a mark
//! (✓ ! ✗ –) and a pattern besides its colour, and every bar its figure.
//!
//! Layout first (a list of drawing operations per page, with page breaks), then drawing, so
//! the layout can be checked without parsing a PDF.

use std::sync::LazyLock;

use jiff::tz::TimeZone;
use krilla::Document;
use krilla::color::{luma, rgb};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Paint, Stroke, StrokeDash};
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider as _;
use skrifa::instance::{LocationRef, Size};

use super::ReportContext;
use super::figures::{
    BackupFigures, BackupJobFigures, DayMark, IncidentFigures, Inventory, MonthlyFigures,
    PreventiveFigures, SlaOutcome, SoftwareStatus,
};
use super::text::{self, local, local_date};
use vigie_domain::Tier;

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 42.0;
const TOP: f32 = 48.0;
const BOTTOM: f32 = PAGE_H - 54.0;
const WIDTH: f32 = PAGE_W - 2.0 * MARGIN;
const BODY: f32 = 9.0;
const SMALL: f32 = 7.5;

/// Greys and colours; each is paired with a mark or a pattern wherever it carries meaning.
const BLACK: (u8, u8, u8) = (0, 0, 0);
const GREY: (u8, u8, u8) = (110, 110, 110);
const LIGHT: (u8, u8, u8) = (228, 228, 228);
const GREEN: (u8, u8, u8) = (46, 125, 50);
const ORANGE: (u8, u8, u8) = (230, 140, 0);
const RED: (u8, u8, u8) = (183, 28, 28);
const WHITE: (u8, u8, u8) = (255, 255, 255);

/// Width measuring: the same font files, read with skrifa (krilla's own font reader).
struct Metrics {
    regular: FontMetrics,
    bold: FontMetrics,
}

struct FontMetrics {
    data: &'static [u8],
}

impl FontMetrics {
    fn font(&self) -> Option<skrifa::FontRef<'static>> {
        skrifa::FontRef::new(self.data).ok()
    }

    fn has(&self, c: char) -> bool {
        self.font().is_some_and(|f| f.charmap().map(c).is_some())
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let Some(font) = self.font() else {
            return text.chars().count() as f32 * size * 0.6;
        };
        let upem = f32::from(
            font.metrics(Size::unscaled(), LocationRef::default())
                .units_per_em,
        );
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::unscaled(), LocationRef::default());
        let units: f32 = text
            .chars()
            .map(|c| {
                charmap
                    .map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(upem * 0.6)
            })
            .sum();
        units * size / upem
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    regular: FontMetrics { data: REGULAR },
    bold: FontMetrics { data: BOLD },
});

fn measure(text: &str, size: f32, bold: bool) -> f32 {
    if bold {
        METRICS.bold.width(text, size)
    } else {
        METRICS.regular.width(text, size)
    }
}

/// Characters the fonts lack become '?', so nothing is silently dropped from a line.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if METRICS.regular.has(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// One drawing operation, in page coordinates (points, y down from the top).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        colour: (u8, u8, u8),
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Option<(u8, u8, u8)>,
        stroke: Option<(u8, u8, u8)>,
        dashed: bool,
    },
    /// Diagonal hatching inside a rectangle (warnings: readable without colour).
    Hatch {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        colour: (u8, u8, u8),
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        colour: (u8, u8, u8),
    },
}

/// Pages of operations with a cursor and page breaks.
pub struct Layout {
    pub pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Layout {
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Breaks the page unless `height` more fits.
    fn need(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.new_page();
        }
    }

    fn gap(&mut self, h: f32) {
        self.y += h;
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, colour: (u8, u8, u8), t: &str) {
        let text = printable(t);
        self.ops().push(Op::Text {
            x,
            y,
            size,
            bold,
            colour,
            text,
        });
    }

    fn heading(&mut self, title: &str) {
        self.need(60.0);
        self.gap(10.0);
        self.text_at(MARGIN, self.y + 13.0, 13.0, true, BLACK, title);
        self.y += 17.0;
        let y = self.y;
        self.ops().push(Op::Line {
            x1: MARGIN,
            y1: y,
            x2: MARGIN + WIDTH,
            y2: y,
            colour: GREY,
        });
        self.y += 6.0;
    }

    fn subheading(&mut self, title: &str) {
        self.need(40.0);
        self.gap(4.0);
        self.paragraph_at(MARGIN, WIDTH, title, 10.0, true);
    }

    fn paragraph(&mut self, t: &str, size: f32) {
        self.paragraph_at(MARGIN, WIDTH, t, size, false);
    }

    /// Wraps `t` on words within `width`.
    fn paragraph_at(&mut self, x: f32, width: f32, t: &str, size: f32, bold: bool) {
        let line_h = size * 1.35;
        for line in wrap(t, size, bold, width) {
            self.need(line_h);
            self.text_at(x, self.y + size, size, bold, BLACK, &line);
            self.y += line_h;
        }
    }

    /// A table: header row in bold, cells cut to their column with "…".
    fn table(&mut self, columns: &[(&str, f32)], rows: &[Vec<String>]) {
        let size = SMALL + 0.5;
        let row_h = size * 1.6;
        let total: f32 = columns.iter().map(|c| c.1).sum();
        let scale = WIDTH / total.max(1.0);
        let header = |l: &mut Layout| {
            l.need(row_h * 2.0);
            let y = l.y;
            l.ops().push(Op::Rect {
                x: MARGIN,
                y,
                w: WIDTH,
                h: row_h,
                fill: Some(LIGHT),
                stroke: None,
                dashed: false,
            });
            let mut x = MARGIN + 2.0;
            for (title, w) in columns {
                let cell = fit(title, size, true, w * scale - 4.0);
                l.text_at(x, y + size + 2.0, size, true, BLACK, &cell);
                x += w * scale;
            }
            l.y += row_h;
        };
        header(self);
        for row in rows {
            if self.y + row_h > BOTTOM {
                self.new_page();
                header(self);
            }
            let y = self.y;
            let mut x = MARGIN + 2.0;
            for ((_, w), cell) in columns.iter().zip(row) {
                let cell = fit(cell, size, false, w * scale - 4.0);
                self.text_at(x, y + size + 2.0, size, false, BLACK, &cell);
                x += w * scale;
            }
            self.y += row_h;
            let y = self.y;
            self.ops().push(Op::Line {
                x1: MARGIN,
                y1: y,
                x2: MARGIN + WIDTH,
                y2: y,
                colour: LIGHT,
            });
        }
        self.y += 4.0;
    }

    /// A month strip: one box per day, each with a mark and a pattern, the day number below.
    fn strip(&mut self, days: &[DayMark]) {
        let n = days.len().max(28) as f32;
        let step = WIDTH / n;
        let size = (step - 2.5).min(14.0);
        self.need(size + 14.0);
        let y = self.y;
        for (i, mark) in days.iter().enumerate() {
            let x = MARGIN + i as f32 * step;
            self.day_box(x, y, size, *mark);
            let label = (i + 1).to_string();
            let lw = measure(&label, 5.5, false);
            self.text_at(
                x + (size - lw) / 2.0,
                y + size + 7.0,
                5.5,
                false,
                GREY,
                &label,
            );
        }
        self.y += size + 11.0;
    }

    fn day_box(&mut self, x: f32, y: f32, size: f32, mark: DayMark) {
        let (fill, stroke, dashed, symbol, ink) = match mark {
            DayMark::Success => (Some(GREEN), Some(BLACK), false, "✓", WHITE),
            DayMark::Warning => (Some(WHITE), Some(BLACK), false, "!", BLACK),
            DayMark::Failed => (Some(RED), Some(BLACK), false, "✗", WHITE),
            DayMark::Missing => (Some(WHITE), Some(BLACK), true, "–", BLACK),
            DayMark::NotExpected => (Some(LIGHT), None, false, "", BLACK),
            DayMark::Future => (None, Some(LIGHT), true, "", BLACK),
        };
        self.ops().push(Op::Rect {
            x,
            y,
            w: size,
            h: size,
            fill,
            stroke: None,
            dashed: false,
        });
        if mark == DayMark::Warning {
            self.ops().push(Op::Hatch {
                x,
                y,
                w: size,
                h: size,
                colour: ORANGE,
            });
        }
        if stroke.is_some() {
            self.ops().push(Op::Rect {
                x,
                y,
                w: size,
                h: size,
                fill: None,
                stroke,
                dashed,
            });
        }
        if !symbol.is_empty() {
            let s = size * 0.72;
            let w = measure(symbol, s, true);
            self.text_at(
                x + (size - w) / 2.0,
                y + size * 0.5 + s * 0.36,
                s,
                true,
                ink,
                symbol,
            );
        }
    }

    fn legend(&mut self) {
        let items = [
            (DayMark::Success, "réussie"),
            (DayMark::Warning, "avertissement"),
            (DayMark::Failed, "échec"),
            (DayMark::Missing, "attendue, non reçue"),
            (DayMark::NotExpected, "rien d'attendu"),
        ];
        self.need(16.0);
        let y = self.y;
        let mut x = MARGIN;
        for (mark, label) in items {
            self.day_box(x, y, 10.0, mark);
            self.text_at(x + 13.0, y + 8.0, SMALL, false, BLACK, label);
            x += 13.0 + measure(label, SMALL, false) + 14.0;
        }
        self.y += 16.0;
    }

    /// A horizontal bar: filled part `fraction` (solid), rest white, outlined, figure beside.
    fn bar_at(&mut self, x: f32, y: f32, w: f32, h: f32, fraction: f64, label: &str) {
        let filled = (w * fraction.clamp(0.0, 1.0) as f32).max(0.0);
        self.ops().push(Op::Rect {
            x,
            y,
            w,
            h,
            fill: Some(WHITE),
            stroke: None,
            dashed: false,
        });
        if filled > 0.0 {
            self.ops().push(Op::Rect {
                x,
                y,
                w: filled,
                h,
                fill: Some(GREY),
                stroke: None,
                dashed: false,
            });
        }
        self.ops().push(Op::Rect {
            x,
            y,
            w,
            h,
            fill: None,
            stroke: Some(BLACK),
            dashed: false,
        });
        self.text_at(x + w + 4.0, y + h - 1.0, SMALL, false, BLACK, label);
    }

    /// A stacked bar of counts (successes solid, warnings hatched, failures black, missing
    /// white), each segment's count printed in the legend beside it.
    fn stacked(&mut self, parts: &[(u32, DayMark, String)]) {
        let total: u32 = parts.iter().map(|p| p.0).sum();
        self.need(30.0);
        let y = self.y;
        let w = WIDTH * 0.55;
        let mut x = MARGIN;
        if total > 0 {
            for (n, mark, _) in parts {
                let seg = w * (*n as f32) / (total as f32);
                if seg <= 0.0 {
                    continue;
                }
                let fill = match mark {
                    DayMark::Success => GREEN,
                    DayMark::Failed => RED,
                    _ => WHITE,
                };
                self.ops().push(Op::Rect {
                    x,
                    y,
                    w: seg,
                    h: 12.0,
                    fill: Some(fill),
                    stroke: Some(BLACK),
                    dashed: *mark == DayMark::Missing,
                });
                if *mark == DayMark::Warning {
                    self.ops().push(Op::Hatch {
                        x,
                        y,
                        w: seg,
                        h: 12.0,
                        colour: ORANGE,
                    });
                }
                x += seg;
            }
        }
        let legend: Vec<String> = parts.iter().map(|p| p.2.clone()).collect();
        self.paragraph_at(
            MARGIN + w + 8.0,
            WIDTH - w - 8.0,
            &legend.join(" · "),
            SMALL,
            false,
        );
        self.y = self.y.max(y + 16.0);
    }
}

/// Lines of `t` that fit in `width`.
fn wrap(t: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in t.split('\n') {
        let mut line = String::new();
        for word in para.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if measure(&candidate, size, bold) <= width || line.is_empty() {
                line = candidate;
            } else {
                lines.push(std::mem::take(&mut line));
                line = word.to_owned();
            }
        }
        lines.push(line);
    }
    lines
}

/// `t` cut to `width` with "…".
fn fit(t: &str, size: f32, bold: bool, width: f32) -> String {
    if measure(t, size, bold) <= width {
        return t.to_owned();
    }
    let mut out = String::new();
    for c in t.chars() {
        let next = format!("{out}{c}…");
        if measure(&next, size, bold) > width {
            break;
        }
        out.push(c);
    }
    format!("{out}…")
}

// ---- the report ----

/// The figures' pages, laid out.
pub fn layout(f: &MonthlyFigures, context: &ReportContext) -> Layout {
    let zone = &context.zone;
    let mut l = Layout::new();
    header(&mut l, f, context);
    if !f.has_data {
        l.gap(6.0);
        l.subheading("Aucune donnée pour ce mois");
        l.paragraph(
            &format!(
                "Aucun poste du cabinet n'a transmis de rapport entre le {} et le {} : ce rapport \
                 ne contient donc aucun chiffre de sauvegarde, de maintenance ni de disponibilité \
                 pour la période.",
                local_date(f.period_start, zone),
                local_date(f.period_end - jiff::SignedDuration::from_secs(1), zone)
            ),
            BODY,
        );
    }
    if let Some(b) = &f.backups {
        backups(&mut l, b, zone);
    }
    if let Some(p) = &f.preventive {
        preventive(&mut l, p, zone);
    }
    if let Some(i) = &f.incidents {
        incidents(&mut l, i, f.tier, zone);
    }
    inventory(&mut l, &f.inventory, f.generated_at, zone);
    l
}

fn header(l: &mut Layout, f: &MonthlyFigures, context: &ReportContext) {
    let zone = &context.zone;
    l.text_at(MARGIN, l.y + 18.0, 18.0, true, BLACK, "Rapport mensuel");
    let right = format!("{} — {}", f.month.label(), f.month);
    let w = measure(&right, 11.0, true);
    l.text_at(MARGIN + WIDTH - w, l.y + 18.0, 11.0, true, BLACK, &right);
    l.y += 28.0;
    l.paragraph_at(
        MARGIN,
        WIDTH,
        &format!("Cabinet : {}", f.clinic_name),
        12.0,
        true,
    );
    l.paragraph(
        &format!("Contrat : {}", text::tier_name(f.tier)),
        BODY + 1.0,
    );
    l.paragraph(text::tier_coverage(f.tier), BODY);
    l.paragraph(
        &format!(
            "Support : {} — {} ({})",
            context.msp_name,
            context.msp_phone,
            text::support_hours(f.tier)
        ),
        BODY,
    );
    l.paragraph(
        &format!(
            "Période : du {} au {} inclus, heure de La Réunion ({}). Édité le {}.",
            local_date(f.period_start, zone),
            local_date(f.period_end - jiff::SignedDuration::from_secs(1), zone),
            f.time_zone,
            local(f.generated_at, zone)
        ),
        BODY,
    );
}

fn backups(l: &mut Layout, b: &BackupFigures, zone: &TimeZone) {
    l.heading("Sauvegardes");
    if b.jobs.is_empty() {
        l.paragraph(
            "Aucune tâche de sauvegarde n'est déclarée ni n'a rendu compte ce mois-ci.",
            BODY,
        );
        return;
    }
    let denominator: u32 = b
        .jobs
        .iter()
        .map(|j| j.runs_expected.unwrap_or(0).max(j.runs_seen))
        .sum();
    l.paragraph_at(
        MARGIN,
        WIDTH,
        &format!(
            "Réussite sur le mois : {}/{} ({})",
            b.successes,
            denominator,
            b.success_percent
                .map_or("–".to_owned(), |p| format!("{p} %"))
        ),
        10.0,
        true,
    );
    let missing = denominator.saturating_sub(b.successes + b.warnings + b.failures);
    l.stacked(&[
        (
            b.successes,
            DayMark::Success,
            text::count(b.successes, "réussie", "réussies"),
        ),
        (
            b.warnings,
            DayMark::Warning,
            text::count(b.warnings, "avertissement", "avertissements"),
        ),
        (
            b.failures,
            DayMark::Failed,
            text::count(b.failures, "échec", "échecs"),
        ),
        (
            missing,
            DayMark::Missing,
            text::count(missing, "manquante", "manquantes"),
        ),
    ]);
    l.paragraph(
        &format!(
            "{} attendues, {} reçues, sur {}.",
            text::count(b.runs_expected, "exécution", "exécutions"),
            b.runs_seen,
            text::count(b.jobs.len() as u32, "tâche", "tâches"),
        ),
        BODY,
    );
    for job in &b.jobs {
        backup_job(l, job, zone);
    }
    l.gap(2.0);
    l.legend();
}

fn backup_job(l: &mut Layout, j: &BackupJobFigures, zone: &TimeZone) {
    l.need(80.0);
    l.subheading(&format!(
        "Tâche « {} » sur {} ({})",
        j.job, j.machine, j.cadence
    ));
    let denominator = j.runs_expected.unwrap_or(0).max(j.runs_seen);
    l.paragraph(
        &format!(
            "Exécutions : {} attendues, {} reçues — {}, {}, {} — réussite {}/{} ({})",
            j.runs_expected.map_or("?".to_owned(), |n| n.to_string()),
            j.runs_seen,
            text::count(j.successes, "réussie", "réussies"),
            text::count(j.warnings, "avertissement", "avertissements"),
            text::count(j.failures, "échec", "échecs"),
            j.successes,
            denominator,
            j.success_percent
                .map_or("–".to_owned(), |p| format!("{p} %")),
        ),
        BODY,
    );
    let check = match (j.last_good_check_at, j.check_expected) {
        (Some(at), _) => local(at, zone),
        (None, true) => "aucune (une vérification est attendue)".to_owned(),
        (None, false) => "aucune".to_owned(),
    };
    l.paragraph(
        &format!(
            "Plus longue période sans sauvegarde réussie : {} — dernière réussite : {} — \
             dernière vérification d'intégrité réussie : {}",
            text::hours(j.longest_without_success_seconds),
            j.last_success_at
                .map_or("aucune".to_owned(), |at| local(at, zone)),
            check
        ),
        BODY,
    );
    if j.runs_truncated {
        l.paragraph(
            &format!(
                "Attention : seules les {} dernières exécutions de cette tâche sont conservées ; \
                 les chiffres ci-dessus en sont un minimum.",
                crate::storage::RUNS_KEPT
            ),
            BODY,
        );
    }
    l.gap(2.0);
    l.strip(&j.days);
}

fn preventive(l: &mut Layout, p: &PreventiveFigures, zone: &TimeZone) {
    l.heading("Maintenance préventive");
    l.paragraph(
        "État de chaque poste à la fin du mois : mises à jour du système (sécurité à part), \
         redémarrage, antivirus et logiciels métiers.",
        BODY,
    );
    let rows: Vec<Vec<String>> = p
        .machines
        .iter()
        .map(|m| {
            let (updates, security, reboot) = m.updates.as_ref().map_or(
                ("non remonté".to_owned(), "–".to_owned(), "–".to_owned()),
                |u| {
                    (
                        u.pending.to_string(),
                        u.security.to_string(),
                        text::yes_no(u.reboot_required).to_owned(),
                    )
                },
            );
            let av = match &m.antivirus {
                None => "non remonté".to_owned(),
                Some(a) if a.none_found || a.products.is_empty() => "aucun antivirus".to_owned(),
                Some(a) => a
                    .products
                    .iter()
                    .map(|p| {
                        let state = if !p.enabled {
                            "désactivé"
                        } else if p.realtime_protection == Some(false) {
                            "sans protection temps réel"
                        } else {
                            "actif"
                        };
                        let age = p
                            .signature_age_days
                            .map_or(String::new(), |d| format!(", signatures de {d} j"));
                        format!("{} {state}{age}", p.name)
                    })
                    .collect::<Vec<_>>()
                    .join(" ; "),
            };
            vec![m.machine.clone(), updates, security, reboot, av]
        })
        .collect();
    l.table(
        &[
            ("Poste", 90.0),
            ("Mises à jour", 62.0),
            ("dont sécurité", 66.0),
            ("Redémarrage", 64.0),
            ("Antivirus", 233.0),
        ],
        &rows,
    );
    let software: Vec<Vec<String>> = p
        .machines
        .iter()
        .flat_map(|m| {
            m.software.iter().map(|s| {
                vec![
                    m.machine.clone(),
                    s.name.clone(),
                    s.version.clone(),
                    s.reference_version
                        .clone()
                        .unwrap_or_else(|| "–".to_owned()),
                    match s.status {
                        SoftwareStatus::UpToDate => "à jour",
                        SoftwareStatus::Behind => "en retard",
                        SoftwareStatus::NoReference => "sans référence",
                    }
                    .to_owned(),
                ]
            })
        })
        .collect();
    l.subheading("Logiciels métiers");
    if software.is_empty() {
        l.paragraph("Aucun logiciel métier suivi n'a été remonté.", BODY);
    } else {
        l.table(
            &[
                ("Poste", 90.0),
                ("Logiciel", 170.0),
                ("Version", 80.0),
                ("Référence", 80.0),
                ("État", 95.0),
            ],
            &software,
        );
    }
    l.subheading("Équipements du réseau local : disponibilité sur le mois");
    if p.devices.is_empty() {
        l.paragraph("Aucun équipement du réseau local n'est supervisé.", BODY);
        return;
    }
    for d in &p.devices {
        l.need(16.0);
        let y = l.y;
        let name = fit(
            &format!("{} ({})", d.name, text::device_kind(&d.kind)),
            SMALL + 0.5,
            false,
            170.0,
        );
        l.text_at(MARGIN, y + 8.5, SMALL + 0.5, false, BLACK, &name);
        let label = match d.availability_percent {
            Some(p) => {
                let mut label = format!(
                    "{} — {} hors service, {}",
                    text::percent_1(p),
                    text::duration(d.down_seconds),
                    text::count(d.outages, "coupure", "coupures")
                );
                // Known for part of the month only (a device added since): say over how long.
                if d.observed_seconds + 86_400 < d.window_seconds {
                    label.push_str(&format!(" (sur {} j suivis)", d.observed_seconds / 86_400));
                }
                label
            }
            None => "historique indisponible".to_owned(),
        };
        let fraction = d.availability_percent.unwrap_or(0.0) / 100.0;
        l.bar_at(MARGIN + 175.0, y + 1.0, 150.0, 9.0, fraction, &label);
        l.y += 14.0;
    }
    let _ = zone;
}

fn incidents(l: &mut Layout, i: &IncidentFigures, tier: Tier, zone: &TimeZone) {
    l.heading("Alertes et tickets");
    l.paragraph(
        &format!(
            "Alertes ouvertes : {} — résolues : {} — délai médian de résolution : {} — le plus \
             long : {}",
            i.alerts_opened,
            i.alerts_resolved,
            i.median_resolve_seconds
                .map_or("–".to_owned(), text::duration),
            i.longest_resolve_seconds
                .map_or("–".to_owned(), text::duration),
        ),
        BODY,
    );
    l.paragraph(
        &format!(
            "Délai de prise en charge contractuel : {} h en heures de support ({}).",
            i.sla_hours,
            text::support_hours(tier)
        ),
        BODY,
    );
    l.paragraph_at(
        MARGIN,
        WIDTH,
        &format!(
            "Tickets : {} — délai respecté : {} — délai dépassé : {} — en cours : {}",
            i.tickets.len(),
            i.sla_met,
            i.sla_missed,
            i.sla_pending
        ),
        10.0,
        true,
    );
    if i.tickets.is_empty() {
        l.paragraph("Aucun ticket ce mois-ci.", BODY);
        return;
    }
    let rows: Vec<Vec<String>> = i
        .tickets
        .iter()
        .map(|t| {
            vec![
                format!("#{}", t.alert_id),
                format!("{} ({})", t.summary, t.machine),
                local(t.opened_at, zone),
                t.responded_at.map_or("–".to_owned(), |at| local(at, zone)),
                text::duration(t.response_support_seconds),
                match t.outcome {
                    SlaOutcome::Met => "respecté",
                    SlaOutcome::Missed => "dépassé",
                    SlaOutcome::Pending => "en cours",
                }
                .to_owned(),
            ]
        })
        .collect();
    l.table(
        &[
            ("Ticket", 32.0),
            ("Objet", 170.0),
            ("Ouvert le", 78.0),
            ("Pris en charge", 78.0),
            ("Délai ouvré", 70.0),
            ("Engagement", 62.0),
        ],
        &rows,
    );
}

fn inventory(l: &mut Layout, inv: &Inventory, at: jiff::Timestamp, zone: &TimeZone) {
    l.heading("État du parc");
    l.paragraph(
        &format!(
            "Postes et équipements suivis, tels que connus le {}.",
            local(at, zone)
        ),
        BODY,
    );
    if inv.machines.is_empty() {
        l.paragraph("Aucun poste n'est suivi pour ce cabinet.", BODY);
    } else {
        let rows: Vec<Vec<String>> = inv
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.hostname.clone(),
                    text::role(&m.role).to_owned(),
                    m.os.clone(),
                    m.last_seen
                        .map_or("jamais".to_owned(), |at| local(at, zone)),
                    m.disks
                        .iter()
                        .map(|d| {
                            format!(
                                "{} {} Go, {} %",
                                d.mount_point,
                                d.total_bytes / 1_000_000_000,
                                d.used_percent
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ; "),
                ]
            })
            .collect();
        l.table(
            &[
                ("Poste", 90.0),
                ("Rôle", 50.0),
                ("Système", 120.0),
                ("Dernier contact", 82.0),
                ("Disques (utilisé)", 173.0),
            ],
            &rows,
        );
    }
    if !inv.devices.is_empty() {
        let rows: Vec<Vec<String>> = inv
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    text::device_kind(&d.kind).to_owned(),
                    d.address.clone(),
                    match d.state {
                        crate::facts::DeviceState::Up => "joignable",
                        crate::facts::DeviceState::Degraded => "dégradé",
                        crate::facts::DeviceState::Down => "injoignable",
                        crate::facts::DeviceState::Unknown => "inconnu",
                    }
                    .to_owned(),
                    d.probed_by.clone(),
                ]
            })
            .collect();
        l.subheading("Équipements du réseau local");
        l.table(
            &[
                ("Équipement", 130.0),
                ("Type", 100.0),
                ("Adresse", 110.0),
                ("État", 75.0),
                ("Surveillé par", 100.0),
            ],
            &rows,
        );
    }
}

// ---- drawing ----

fn paint(c: (u8, u8, u8)) -> Paint {
    if c.0 == c.1 && c.1 == c.2 {
        luma::Color::new(c.0).into()
    } else {
        rgb::Color::new(c.0, c.1, c.2).into()
    }
}

/// The PDF of the figures.
pub fn render(f: &MonthlyFigures, context: &ReportContext) -> Result<Vec<u8>, String> {
    let l = layout(f, context);
    let regular =
        Font::new(REGULAR.into(), 0).ok_or_else(|| "the embedded font is unreadable".to_owned())?;
    let bold = Font::new(BOLD.into(), 0)
        .ok_or_else(|| "the embedded bold font is unreadable".to_owned())?;
    let settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| "bad page size".to_owned())?;
    let mut document = Document::new();
    let count = l.pages.len();
    for (index, ops) in l.pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        let footer = printable(&format!(
            "{} — rapport mensuel {} — page {}/{}",
            f.clinic_name,
            f.month,
            index + 1,
            count
        ));
        let footer_op = Op::Text {
            x: MARGIN,
            y: PAGE_H - 28.0,
            size: SMALL,
            bold: false,
            colour: GREY,
            text: footer,
        };
        for op in ops.iter().chain([&footer_op]) {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    bold: is_bold,
                    colour,
                    text,
                } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: paint(*colour),
                        ..Fill::default()
                    }));
                    let font = if *is_bold {
                        bold.clone()
                    } else {
                        regular.clone()
                    };
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        font,
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Rect {
                    x,
                    y,
                    w,
                    h,
                    fill,
                    stroke,
                    dashed,
                } => {
                    let Some(rect) = Rect::from_xywh(*x, *y, w.max(0.1), h.max(0.1)) else {
                        continue;
                    };
                    let mut pb = PathBuilder::new();
                    pb.push_rect(rect);
                    let Some(path) = pb.finish() else { continue };
                    surface.set_fill(fill.map(|c| Fill {
                        paint: paint(c),
                        ..Fill::default()
                    }));
                    surface.set_stroke(stroke.map(|c| Stroke {
                        paint: paint(c),
                        width: 0.7,
                        dash: dashed.then(|| StrokeDash {
                            array: vec![1.5, 1.5],
                            offset: 0.0,
                        }),
                        ..Stroke::default()
                    }));
                    surface.draw_path(&path);
                }
                Op::Hatch { x, y, w, h, colour } => {
                    let Some(rect) = Rect::from_xywh(*x, *y, w.max(0.1), h.max(0.1)) else {
                        continue;
                    };
                    let mut clip = PathBuilder::new();
                    clip.push_rect(rect);
                    let Some(clip) = clip.finish() else { continue };
                    let mut lines = PathBuilder::new();
                    let mut offset = -h;
                    while offset < *w {
                        lines.move_to(x + offset, y + h);
                        lines.line_to(x + offset + h, *y);
                        offset += 3.0;
                    }
                    let Some(lines) = lines.finish() else {
                        continue;
                    };
                    surface.push_clip_path(&clip, &krilla::paint::FillRule::NonZero);
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        paint: paint(*colour),
                        width: 0.9,
                        ..Stroke::default()
                    }));
                    surface.draw_path(&lines);
                    surface.pop();
                }
                Op::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    colour,
                } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(*x1, *y1);
                    pb.line_to(*x2, *y2);
                    let Some(path) = pb.finish() else { continue };
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        paint: paint(*colour),
                        width: 0.6,
                        ..Stroke::default()
                    }));
                    surface.draw_path(&path);
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_and_french_letter_is_in_the_embedded_font() {
        for c in "✓✗–—…«»éèêàçôûœÉ€%".chars() {
            assert!(METRICS.regular.has(c), "regular lacks {c}");
            assert!(METRICS.bold.has(c), "bold lacks {c}");
        }
        assert_eq!(printable("a\u{E000}b"), "a?b");
    }

    #[test]
    fn long_text_wraps_and_cells_are_cut() {
        let long = "mot ".repeat(200);
        let lines = wrap(&long, BODY, false, WIDTH);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| measure(l, BODY, false) <= WIDTH));
        let cut = fit("un nom de poste beaucoup trop long", BODY, false, 40.0);
        assert!(cut.ends_with('…') && measure(&cut, BODY, false) <= 40.0);
    }
}

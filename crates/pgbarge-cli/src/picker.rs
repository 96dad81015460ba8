//! The table picker: a checklist of the source's tables, filtered as the user types,
//! drawn on stderr with crossterm.
//!
//! pgbarge has its own rather than inquire's `MultiSelect` because that one cannot be made
//! to do what picking tables out of hundreds needs: its "select all" under a filter drops
//! the earlier picks, and its filter runs over the whole option text (row counts and sizes
//! included). The picker is split in two: [`Picker`] holds the state (filter, cursor,
//! scroll, picks) and changes it one key at a time, with no terminal involved, so it is
//! tested on its own; [`frame`] turns it into lines that fit the terminal, and [`Screen`]
//! draws them and puts the terminal back as it was, whichever way the picker ends.

use std::io::{self, IsTerminal, Write};

use crossterm::cursor::{MoveDown, MoveToColumn, MoveUp};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::queue;
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, Clear, ClearType};
use pgbarge::catalog::Table;
use pgbarge::text::{human_bytes, thousands};
use pgbarge::{Error, Result};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::terminal::{cancelled_error, terminal_error};

/// The question, shown before the filter while picking and before the picks afterwards.
const PROMPT: &str = "Tables to copy: ";

/// Shown (instead of the help) when Enter is pressed with nothing picked.
const NOTHING_PICKED: &str = "pick at least one table (space)";

/// The help line, longest first: the first that fits the terminal's width is shown.
const HELP: [&str; 5] = [
    "type to filter · space pick · → all shown · ← none shown · enter done · esc cancel",
    "type to filter · space pick · → all · ← none · enter done · esc cancel",
    "space pick · → all shown · ← none shown · enter done · esc cancel",
    "space pick · → all · ← none · enter done · esc cancel",
    "space · → all · ← none · enter · esc",
];

/// Lines drawn besides the list: the question with the filter, the counts, the help.
const CHROME_LINES: u16 = 3;

/// The list shows at least this many tables, however short the terminal.
const MIN_PAGE: usize = 3;

/// In the final line, at most this many names before "and N more".
const SUMMARY_NAMES: usize = 5;

/// Lets the user pick tables: type to filter, space to pick, → / ← to pick or unpick every
/// table the filter shows, Enter when done. Returns the picked tables in the listed order;
/// Esc or Ctrl-C cancel (the error says nothing was written).
pub fn pick(tables: &[Table]) -> Result<Vec<Table>> {
    if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
        return Err(Error::usage(
            "picking tables needs a terminal. Name the tables to copy instead, or use --all.",
        ));
    }
    let rows: Vec<Row> = tables.iter().map(Row::of).collect();
    let mut picker = Picker::new(rows.iter().map(|r| r.name.clone()));
    let chosen = {
        let mut screen = Screen::open().map_err(terminal_error)?;
        run(&mut picker, &rows, &mut screen).map_err(terminal_error)?
        // The screen goes here: the picker's lines are cleared, raw mode is ended.
    };
    let Some(chosen) = chosen else {
        return Err(cancelled_error());
    };
    let names: Vec<&str> = chosen.iter().map(|&i| rows[i].name.as_str()).collect();
    let (cols, _) = terminal::size().unwrap_or((80, 24));
    eprintln!("{}", summary(&names, usable_width(cols)));
    Ok(chosen.into_iter().map(|i| tables[i].clone()).collect())
}

/// Draws, reads a key, applies it, until the user is done (`Some`, the picked indexes)
/// or cancels (`None`). The terminal's size is asked on every pass, so a resize is
/// followed at once.
fn run(picker: &mut Picker, rows: &[Row], screen: &mut Screen) -> io::Result<Option<Vec<usize>>> {
    loop {
        let (cols, lines) = terminal::size().unwrap_or((80, 24));
        picker.set_page(page_size(lines));
        screen.draw(&frame(picker, rows, usable_width(cols)))?;
        // Anything but a key (a resize, focus, a paste) only redraws.
        if let Event::Key(key) = event::read()? {
            match key_of(&key).map(|k| picker.apply(k)) {
                Some(Step::Done(chosen)) => return Ok(Some(chosen)),
                Some(Step::Cancel) => return Ok(None),
                Some(Step::Continue) | None => {}
            }
        }
    }
}

/// How many tables the list shows in a terminal of `lines` rows: all the rows but the
/// question, counts and help lines, and never fewer than [`MIN_PAGE`].
fn page_size(lines: u16) -> usize {
    usize::from(lines.saturating_sub(CHROME_LINES)).max(MIN_PAGE)
}

/// The columns a line may use: one fewer than the terminal has, so that no line ever
/// reaches the last column (where some terminals wrap at once, which breaks redrawing).
fn usable_width(cols: u16) -> usize {
    usize::from(cols.saturating_sub(1)).max(1)
}

/// What a key asks of the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// A printable character: add it to the filter.
    Type(char),
    Backspace,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Space: pick or unpick the table under the cursor.
    Toggle,
    /// →: pick every table the filter shows, keeping the earlier picks.
    AddShown,
    /// ←: unpick every table the filter shows, keeping the others.
    RemoveShown,
    /// Enter.
    Done,
    /// Esc or Ctrl-C.
    Cancel,
}

/// The picker's meaning of a key press, if it has one.
fn key_of(event: &KeyEvent) -> Option<Key> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    let alt = event.modifiers.contains(KeyModifiers::ALT);
    Some(match event.code {
        KeyCode::Char('c') if ctrl => Key::Cancel,
        KeyCode::Esc => Key::Cancel,
        KeyCode::Enter => Key::Done,
        KeyCode::Char(' ') if !ctrl && !alt => Key::Toggle,
        KeyCode::Char(c) if !ctrl && !alt && !c.is_control() => Key::Type(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Right => Key::AddShown,
        KeyCode::Left => Key::RemoveShown,
        _ => return None,
    })
}

/// What the picker does after a key.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    /// Enter with something picked: the picked indexes, in the listed order.
    Done(Vec<usize>),
    Cancel,
}

/// The picker's state: the filter typed, which tables it shows, where the cursor is, how
/// far the list is scrolled, and what is picked. Knows nothing of the terminal.
///
/// `cursor` and `scroll` are positions in `shown` (not indexes of tables); the cursor is
/// always within `scroll .. scroll + page` when any table is shown.
#[derive(Debug)]
struct Picker {
    /// The tables' names (`schema.name`), lower-cased once for matching.
    names: Vec<String>,
    filter: String,
    /// Indexes of the tables whose name contains the filter, in the listed order.
    shown: Vec<usize>,
    cursor: usize,
    scroll: usize,
    /// How many tables the list shows at once.
    page: usize,
    picked: Vec<bool>,
    /// A note for the user, until the next key.
    message: Option<&'static str>,
}

impl Picker {
    fn new(names: impl IntoIterator<Item = String>) -> Picker {
        let names: Vec<String> = names.into_iter().map(|n| n.to_lowercase()).collect();
        Picker {
            shown: (0..names.len()).collect(),
            picked: vec![false; names.len()],
            names,
            filter: String::new(),
            cursor: 0,
            scroll: 0,
            page: MIN_PAGE,
            message: None,
        }
    }

    /// Applies one key.
    fn apply(&mut self, key: Key) -> Step {
        self.message = None;
        match key {
            Key::Type(c) => self.type_char(c),
            Key::Backspace => self.backspace(),
            Key::Up => self.up(),
            Key::Down => self.down(),
            Key::PageUp => self.move_to(self.cursor.saturating_sub(self.page)),
            Key::PageDown => self.move_to(self.cursor.saturating_add(self.page)),
            Key::Home => self.move_to(0),
            Key::End => self.move_to(usize::MAX),
            Key::Toggle => self.toggle(),
            Key::AddShown => self.set_shown(true),
            Key::RemoveShown => self.set_shown(false),
            Key::Done => return self.done(),
            Key::Cancel => return Step::Cancel,
        }
        Step::Continue
    }

    /// Sets how many tables the list shows (the terminal's height decides), scrolling so
    /// that the cursor stays in view.
    fn set_page(&mut self, page: usize) {
        self.page = page.max(1);
        self.keep_cursor_visible();
    }

    fn type_char(&mut self, c: char) {
        self.filter.push(c);
        self.refilter();
    }

    fn backspace(&mut self) {
        if self.filter.pop().is_some() {
            self.refilter();
        }
    }

    /// Shows the tables whose name contains the filter, any case, and puts the cursor on
    /// the first of them: a new filter is a new list.
    fn refilter(&mut self) {
        let filter = self.filter.to_lowercase();
        self.shown = (0..self.names.len())
            .filter(|&i| self.names[i].contains(&filter))
            .collect();
        self.cursor = 0;
        self.scroll = 0;
    }

    /// Up from the first table goes to the last, as in inquire's lists.
    fn up(&mut self) {
        let last = self.shown.len().saturating_sub(1);
        self.move_to(if self.cursor == 0 {
            last
        } else {
            self.cursor - 1
        });
    }

    /// Down from the last table goes to the first.
    fn down(&mut self) {
        let next = self.cursor + 1;
        self.move_to(if next >= self.shown.len() { 0 } else { next });
    }

    /// Puts the cursor at `position`, or the nearest table shown.
    fn move_to(&mut self, position: usize) {
        self.cursor = position.min(self.shown.len().saturating_sub(1));
        self.keep_cursor_visible();
    }

    fn keep_cursor_visible(&mut self) {
        if self.cursor < self.scroll {
            self.scroll = self.cursor;
        } else if self.cursor >= self.scroll + self.page {
            self.scroll = self.cursor + 1 - self.page;
        }
        // No empty lines at the bottom while there are tables above to show instead.
        self.scroll = self.scroll.min(self.shown.len().saturating_sub(self.page));
    }

    fn toggle(&mut self) {
        if let Some(&i) = self.shown.get(self.cursor) {
            self.picked[i] = !self.picked[i];
        }
    }

    /// Picks (or unpicks) every table shown; the others keep their state.
    fn set_shown(&mut self, picked: bool) {
        for &i in &self.shown {
            self.picked[i] = picked;
        }
    }

    fn done(&mut self) -> Step {
        let chosen: Vec<usize> = (0..self.picked.len()).filter(|&i| self.picked[i]).collect();
        if chosen.is_empty() {
            self.message = Some(NOTHING_PICKED);
            Step::Continue
        } else {
            Step::Done(chosen)
        }
    }

    /// The tables in view: a page of `shown`, from the scroll position.
    fn visible(&self) -> &[usize] {
        let end = (self.scroll + self.page).min(self.shown.len());
        &self.shown[self.scroll.min(end)..end]
    }

    fn picked_count(&self) -> usize {
        self.picked.iter().filter(|&&p| p).count()
    }

    /// `300 tables · 2 picked`, or under a filter `9 of 300 match · 2 picked`.
    fn status(&self) -> String {
        let total = self.names.len();
        let picked = self.picked_count();
        if self.filter.is_empty() {
            let noun = if total == 1 { "table" } else { "tables" };
            format!("{total} {noun} · {picked} picked")
        } else {
            let shown = self.shown.len();
            let verb = if shown == 1 { "matches" } else { "match" };
            format!("{shown} of {total} {verb} · {picked} picked")
        }
    }
}

/// What the list shows of one table.
#[derive(Debug, Clone)]
struct Row {
    /// `schema.name`, as pgbarge prints table names.
    name: String,
    /// `~1,234 rows`, or `? rows` when the server has no estimate.
    rows: String,
    /// `8.2 MB`: table, indexes and TOAST.
    size: String,
}

impl Row {
    fn of(table: &Table) -> Row {
        Row {
            name: table.name.to_string(),
            rows: match table.estimated_rows {
                Some(n) if n >= 0 => format!("~{} rows", thousands(n as u64)),
                _ => "? rows".into(),
            },
            size: human_bytes(table.total_bytes.max(0) as u64),
        }
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Plain,
    /// The line under the cursor, and the note when nothing is picked.
    Bold,
    /// The help.
    Dim,
}

/// One line of the picker, already cut to the width.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    look: Look,
}

/// The picker as lines that fit `width` columns: the question with the filter, the
/// counts, the page of tables, the help (or a note). The terminal's cursor goes back to
/// the first line, after the filter, at column `cursor_column`.
#[derive(Debug)]
struct Frame {
    lines: Vec<Line>,
    cursor_column: usize,
}

fn frame(picker: &Picker, rows: &[Row], width: usize) -> Frame {
    let mut lines = Vec::with_capacity(picker.page + 3);
    let header = header(&picker.filter, width);
    let cursor_column = header.width();
    lines.push(Line {
        text: header,
        look: Look::Plain,
    });
    lines.push(Line {
        text: fit(&picker.status(), width),
        look: Look::Plain,
    });
    if picker.shown.is_empty() {
        lines.push(Line {
            text: fit(
                &format!("  no table name contains \"{}\"", picker.filter),
                width,
            ),
            look: Look::Dim,
        });
    }
    let columns = Columns::of(picker.shown.iter().map(|&i| &rows[i]), width);
    for (offset, &i) in picker.visible().iter().enumerate() {
        let under_cursor = picker.scroll + offset == picker.cursor;
        let text = format!(
            "{}{}{}",
            if under_cursor { "> " } else { "  " },
            if picker.picked[i] { "[x] " } else { "[ ] " },
            columns.show(&rows[i])
        );
        lines.push(Line {
            text: fit(&text, width),
            look: if under_cursor {
                Look::Bold
            } else {
                Look::Plain
            },
        });
    }
    lines.push(match picker.message {
        Some(message) => Line {
            text: fit(message, width),
            look: Look::Bold,
        },
        None => Line {
            text: help(width),
            look: Look::Dim,
        },
    });
    Frame {
        lines,
        cursor_column,
    }
}

/// The question and the filter typed; when the filter is too long for the line, its end
/// (where the user types) is what shows.
fn header(filter: &str, width: usize) -> String {
    let room = width.saturating_sub(PROMPT.width());
    if filter.width() <= room {
        return fit(&format!("{PROMPT}{filter}"), width);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 1; // the ellipsis
    for c in filter.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        tail.push(c);
    }
    format!("{PROMPT}…{}", tail.into_iter().rev().collect::<String>())
}

/// The longest help that fits, or the shortest cut to the width.
fn help(width: usize) -> String {
    let fits = HELP.iter().find(|h| h.width() <= width);
    fit(fits.unwrap_or(&HELP[HELP.len() - 1]), width)
}

/// The widths of the list's columns, from the tables the filter shows (so they do not
/// jump while scrolling), and which of the rows and size columns fit beside the names.
///
/// A name is never cut to make room for the estimates: the name column is as wide as the
/// longest name, or as the room left beside the estimates, whichever is less, and a name
/// longer than that is shown alone (cut only at the line's end).
#[derive(Debug)]
struct Columns {
    name: usize,
    rows: Option<usize>,
    size: Option<usize>,
}

/// The cursor mark and check box before each name: `> [x] `.
const MARKS: usize = 6;

/// Between two columns.
const GAP: usize = 2;

/// The estimates are shown only if at least this much of a name fits beside them.
const MIN_NAME: usize = 16;

impl Columns {
    fn of<'a>(shown: impl Iterator<Item = &'a Row>, width: usize) -> Columns {
        let (mut name, mut rows, mut size) = (0, 0, 0);
        for row in shown {
            name = name.max(row.name.width());
            rows = rows.max(row.rows.width());
            size = size.max(row.size.width());
        }
        let room = width.saturating_sub(MARKS);
        let both = GAP + rows + GAP + size;
        let rows_only = GAP + rows;
        if MIN_NAME + both <= room {
            Columns {
                name: name.min(room - both),
                rows: Some(rows),
                size: Some(size),
            }
        } else if MIN_NAME + rows_only <= room {
            Columns {
                name: name.min(room - rows_only),
                rows: Some(rows),
                size: None,
            }
        } else {
            Columns {
                name,
                rows: None,
                size: None,
            }
        }
    }

    /// A table's name, padded, then its rows and size where they fit, right-aligned.
    fn show(&self, row: &Row) -> String {
        let mut text = row.name.clone();
        let Some(rows) = self.rows else {
            return text;
        };
        if row.name.width() > self.name {
            return text;
        }
        pad_to(&mut text, self.name + GAP + rows - row.rows.width());
        text.push_str(&row.rows);
        if let Some(size) = self.size {
            let end = self.name + GAP + rows + GAP + size;
            pad_to(&mut text, end - row.size.width());
            text.push_str(&row.size);
        }
        text
    }
}

/// Adds spaces to `text` up to `width` columns.
fn pad_to(text: &mut String, width: usize) {
    let have = text.width();
    text.extend(std::iter::repeat_n(' ', width.saturating_sub(have)));
}

/// `text` cut to `width` columns, ending in `…` when cut. Counts display columns, so a
/// name in a wide script does not overflow the line (which would wrap and break the
/// redraw).
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The line left once the picker is done: `Tables to copy: public.a, public.b and 12
/// more`, with as many names (at most five) as fit the width.
fn summary(names: &[&str], width: usize) -> String {
    let tail = |shown: usize| match names.len() - shown {
        0 => String::new(),
        more => format!(" and {more} more"),
    };
    for shown in (1..=names.len().min(SUMMARY_NAMES)).rev() {
        let line = format!("{PROMPT}{}{}", names[..shown].join(", "), tail(shown));
        if line.width() <= width {
            return line;
        }
    }
    // Not even one name fits whole: cut it, keep the count.
    let tail = tail(1.min(names.len()));
    let room = width.saturating_sub(PROMPT.width() + tail.width());
    let first = names.first().map(|n| fit(n, room)).unwrap_or_default();
    fit(&format!("{PROMPT}{first}{tail}"), width)
}

/// The terminal while the picker runs: raw mode (keys arrive one by one, unechoed), and
/// the picker's lines on stderr. Dropping it clears those lines and ends raw mode, on
/// every way out: done, cancelled, an error or a panic.
///
/// Between draws the cursor rests on the picker's first line, after the filter: there
/// the user sees it where they type, and the start of the picker's area is always the
/// start of the cursor's line (`MoveToColumn(0)`, no `MoveUp` to count), whatever the last
/// frame's height or the terminal's new size. Nothing is ever cleared from the top-left
/// corner of the screen, where the picker sits when it fills a small terminal: tmux (its
/// `scroll-on-clear`) would push a copy of every frame into the scrollback.
struct Screen {
    out: io::Stderr,
    /// How many lines the last frame had (0: nothing drawn, nothing to clear).
    lines: usize,
}

impl Screen {
    fn open() -> io::Result<Screen> {
        terminal::enable_raw_mode()?;
        Ok(Screen {
            out: io::stderr(),
            lines: 0,
        })
    }

    /// Replaces the picker's lines with `frame`'s, in one write: each line is written
    /// over the last frame's and cleared to its end, then everything below the new last
    /// line is cleared, so no stale line stays however many the last frame had.
    fn draw(&mut self, frame: &Frame) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        queue!(buf, MoveToColumn(0))?;
        for (n, line) in frame.lines.iter().enumerate() {
            if n > 0 {
                // Raw mode: a newline does not return the carriage by itself.
                queue!(buf, Print("\r\n"))?;
            }
            match line.look {
                Look::Plain => queue!(buf, Print(&line.text))?,
                Look::Bold => queue!(
                    buf,
                    SetAttribute(Attribute::Bold),
                    Print(&line.text),
                    SetAttribute(Attribute::Reset)
                )?,
                Look::Dim => queue!(
                    buf,
                    SetAttribute(Attribute::Dim),
                    Print(&line.text),
                    SetAttribute(Attribute::Reset)
                )?,
            }
            queue!(buf, Clear(ClearType::UntilNewLine))?;
        }
        queue!(buf, Clear(ClearType::FromCursorDown))?;
        let below = u16::try_from(frame.lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
        // `MoveUp(0)` would move one line: terminals read a count of 0 as 1.
        if below > 0 {
            queue!(buf, MoveUp(below))?;
        }
        let column = u16::try_from(frame.cursor_column).unwrap_or(u16::MAX);
        queue!(buf, MoveToColumn(column))?;
        self.lines = frame.lines.len();
        self.out.write_all(&buf)?;
        self.out.flush()
    }

    /// Clears the picker's lines, leaving the cursor at the start of the first: the first
    /// line to its end, then, from the second line, everything down.
    fn clear(&mut self) -> io::Result<()> {
        if self.lines == 0 {
            return Ok(());
        }
        queue!(self.out, MoveToColumn(0), Clear(ClearType::UntilNewLine))?;
        if self.lines > 1 {
            queue!(
                self.out,
                MoveDown(1),
                Clear(ClearType::FromCursorDown),
                MoveUp(1)
            )?;
        }
        self.lines = 0;
        self.out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Best effort: there is no one to tell if the terminal is gone.
        let _ = self.clear();
        let _ = terminal::disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(names: &[&str]) -> Picker {
        Picker::new(names.iter().map(|n| n.to_string()))
    }

    fn typed(p: &mut Picker, text: &str) {
        for c in text.chars() {
            p.apply(Key::Type(c));
        }
    }

    fn clear_filter(p: &mut Picker) {
        while !p.filter.is_empty() {
            p.apply(Key::Backspace);
        }
    }

    fn picked(p: &Picker) -> Vec<usize> {
        (0..p.picked.len()).filter(|&i| p.picked[i]).collect()
    }

    fn row(name: &str, rows: &str, size: &str) -> Row {
        Row {
            name: name.into(),
            rows: rows.into(),
            size: size.into(),
        }
    }

    fn sales_and_stock() -> Picker {
        let names: Vec<String> = (1..=30)
            .map(|n| format!("public.sales_{n:03}"))
            .chain((1..=30).map(|n| format!("public.stock_{n:03}")))
            .collect();
        Picker::new(names)
    }

    #[test]
    fn the_filter_matches_names_only_in_any_case() {
        let rows = [
            row("public.orders", "~5 rows", "8.2 kB"),
            row("Sales.Items", "~7 rows", "16.0 kB"),
        ];
        let mut p = Picker::new(rows.iter().map(|r| r.name.clone()));
        typed(&mut p, "rows");
        assert!(p.shown.is_empty(), "the row counts are not matched");
        assert_eq!(p.status(), "0 of 2 match · 0 picked");
        clear_filter(&mut p);
        typed(&mut p, "kB");
        assert!(p.shown.is_empty(), "the sizes are not matched");
        clear_filter(&mut p);
        typed(&mut p, "sales.I");
        assert_eq!(p.shown, [1]);
        assert_eq!(p.status(), "1 of 2 matches · 0 picked");
        // Substring, not fuzzy: "ord" is not "products".
        clear_filter(&mut p);
        typed(&mut p, "ps");
        assert!(p.shown.is_empty());
    }

    #[test]
    fn right_adds_the_shown_tables_to_the_earlier_picks() {
        let mut p = sales_and_stock();
        typed(&mut p, "sales_00");
        assert_eq!(p.shown.len(), 9);
        p.apply(Key::AddShown);
        assert_eq!(p.picked_count(), 9);
        clear_filter(&mut p);
        typed(&mut p, "stock_01");
        p.apply(Key::AddShown);
        assert_eq!(p.status(), "10 of 60 match · 19 picked");
        let expected: Vec<usize> = (0..9).chain(39..49).collect();
        assert_eq!(picked(&p), expected);
        assert_eq!(p.apply(Key::Done), Step::Done(expected));
    }

    #[test]
    fn left_removes_only_the_shown_tables() {
        let mut p = sales_and_stock();
        p.apply(Key::AddShown);
        assert_eq!(p.status(), "60 tables · 60 picked");
        typed(&mut p, "stock");
        p.apply(Key::RemoveShown);
        clear_filter(&mut p);
        assert_eq!(picked(&p), (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn space_toggles_the_table_under_the_cursor_and_keeps_the_filter() {
        let mut p = sales_and_stock();
        typed(&mut p, "stock");
        p.apply(Key::Down);
        p.apply(Key::Toggle);
        assert_eq!(p.filter, "stock");
        assert_eq!(picked(&p), [31]);
        p.apply(Key::Toggle);
        assert!(picked(&p).is_empty());
    }

    #[test]
    fn enter_with_nothing_picked_stays_and_says_why() {
        let mut p = sales_and_stock();
        assert_eq!(p.apply(Key::Done), Step::Continue);
        assert_eq!(p.message, Some(NOTHING_PICKED));
        p.apply(Key::Down);
        assert_eq!(p.message, None, "the note goes with the next key");
        assert_eq!(p.apply(Key::Cancel), Step::Cancel);
    }

    #[test]
    fn picks_come_back_in_the_listed_order() {
        let mut p = picker(&["public.a", "public.b", "public.c", "public.d"]);
        p.apply(Key::End);
        p.apply(Key::Toggle);
        p.apply(Key::Home);
        p.apply(Key::Down);
        p.apply(Key::Toggle);
        assert_eq!(p.apply(Key::Done), Step::Done(vec![1, 3]));
    }

    #[test]
    fn the_cursor_stays_in_range_when_the_filter_shrinks_the_list() {
        let mut p = sales_and_stock();
        p.set_page(5);
        p.apply(Key::End);
        assert_eq!(p.cursor, 59);
        typed(&mut p, "sales_01");
        assert_eq!(p.shown.len(), 10);
        assert!(p.cursor < p.shown.len());
        assert!(p.visible().contains(&p.shown[p.cursor]));
        // Nothing shown: the keys that act on the cursor do nothing, and nothing panics.
        typed(&mut p, "x");
        assert!(p.shown.is_empty());
        for key in [
            Key::Up,
            Key::Down,
            Key::PageUp,
            Key::PageDown,
            Key::Home,
            Key::End,
            Key::Toggle,
            Key::AddShown,
            Key::RemoveShown,
        ] {
            p.apply(key);
            assert_eq!((p.cursor, p.scroll), (0, 0));
        }
        assert!(p.visible().is_empty());
        assert_eq!(p.picked_count(), 0);
    }

    #[test]
    fn scrolling_keeps_the_cursor_visible() {
        let mut p = sales_and_stock();
        p.set_page(5);
        let in_view = |p: &Picker| p.cursor >= p.scroll && p.cursor < p.scroll + p.page;
        for _ in 0..7 {
            p.apply(Key::Down);
            assert!(in_view(&p));
        }
        assert_eq!((p.cursor, p.scroll), (7, 3));
        p.apply(Key::PageDown);
        assert_eq!((p.cursor, p.scroll), (12, 8));
        p.apply(Key::PageUp);
        p.apply(Key::PageUp);
        assert_eq!((p.cursor, p.scroll), (2, 2));
        p.apply(Key::Home);
        p.apply(Key::Up);
        assert_eq!(
            (p.cursor, p.scroll),
            (59, 55),
            "up from the top goes to the end"
        );
        p.apply(Key::Down);
        assert_eq!(
            (p.cursor, p.scroll),
            (0, 0),
            "down from the end goes to the top"
        );
        p.apply(Key::PageDown);
        p.apply(Key::PageDown);
        p.apply(Key::PageDown);
        // A shorter terminal: the cursor is still in view.
        p.set_page(3);
        assert!(in_view(&p));
        // A taller one: no empty lines below while tables above could fill them.
        p.apply(Key::End);
        p.set_page(20);
        assert_eq!(p.scroll, 40);
        assert!(in_view(&p));
        assert_eq!(p.visible().len(), 20);
    }

    #[test]
    fn keys_mean_what_the_help_says() {
        let key = |code, modifiers| key_of(&KeyEvent::new(code, modifiers));
        let none = KeyModifiers::NONE;
        assert_eq!(key(KeyCode::Char('a'), none), Some(Key::Type('a')));
        assert_eq!(
            key(KeyCode::Char('A'), KeyModifiers::SHIFT),
            Some(Key::Type('A'))
        );
        assert_eq!(key(KeyCode::Char(' '), none), Some(Key::Toggle));
        assert_eq!(key(KeyCode::Right, none), Some(Key::AddShown));
        assert_eq!(key(KeyCode::Left, none), Some(Key::RemoveShown));
        assert_eq!(key(KeyCode::Enter, none), Some(Key::Done));
        assert_eq!(key(KeyCode::Esc, none), Some(Key::Cancel));
        assert_eq!(
            key(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Key::Cancel)
        );
        assert_eq!(key(KeyCode::Char('x'), KeyModifiers::CONTROL), None);
        assert_eq!(key(KeyCode::F(1), none), None);
    }

    #[test]
    fn every_line_fits_a_small_terminal() {
        let rows: Vec<Row> = (1..=40)
            .map(|n| {
                row(
                    &format!("public.sales_{n:03}"),
                    &format!("~{} rows", thousands(n * 1000)),
                    "8.2 kB",
                )
            })
            .chain([row(
                "public.a_table_with_a_name_far_longer_than_sixty_columns_can_show",
                "~1 rows",
                "1.0 MB",
            )])
            .collect();
        let mut p = Picker::new(rows.iter().map(|r| r.name.clone()));
        p.set_page(page_size(15));
        assert_eq!(p.page, 12);
        for width in [usable_width(60), 30, 12] {
            let f = frame(&p, &rows, width);
            assert_eq!(f.lines.len(), 15, "question, counts, 12 tables, help");
            for line in &f.lines {
                assert!(line.text.width() <= width, "{:?} at {width}", line.text);
            }
        }
        // At 60 columns, with short names: the name, the rows and the size.
        typed(&mut p, "sales_00");
        let f = frame(&p, &rows, usable_width(60));
        assert_eq!(f.lines[0].text, "Tables to copy: sales_00");
        assert_eq!(f.cursor_column, 24);
        assert_eq!(f.lines[1].text, "9 of 41 match · 0 picked");
        assert_eq!(
            f.lines[2].text,
            "> [ ] public.sales_001  ~1,000 rows  8.2 kB"
        );
        assert_eq!(
            f.lines[3].text,
            "  [ ] public.sales_002  ~2,000 rows  8.2 kB"
        );
        assert_eq!(
            f.lines[11].text,
            "space pick · → all · ← none · enter done · esc cancel"
        );
        // A name too long for the estimates beside it is shown alone, cut only at the
        // line's end; the other tables keep theirs.
        clear_filter(&mut p);
        typed(&mut p, "_");
        p.apply(Key::End);
        let f = frame(&p, &rows, usable_width(60));
        assert_eq!(
            f.lines[13].text,
            "> [ ] public.a_table_with_a_name_far_longer_than_sixty_col…"
        );
        assert_eq!(
            f.lines[12].text,
            "  [ ] public.sales_040                 ~40,000 rows  8.2 kB"
        );
    }

    #[test]
    fn a_long_filter_shows_its_end_where_the_user_types() {
        let f = header("abcdefghijklmnopqrstuvwxyz", 30);
        assert_eq!(f, "Tables to copy: …nopqrstuvwxyz");
        assert_eq!(f.width(), 30);
    }

    #[test]
    fn the_help_shortens_to_fit() {
        assert_eq!(help(200), HELP[0]);
        assert_eq!(help(59), HELP[3]);
        assert_eq!(help(40), HELP[4]);
        assert_eq!(help(10).width(), 10);
    }

    #[test]
    fn no_table_shown_says_so() {
        let rows = [row("public.orders", "~5 rows", "8.2 kB")];
        let mut p = Picker::new(rows.iter().map(|r| r.name.clone()));
        typed(&mut p, "rows");
        let f = frame(&p, &rows, 59);
        assert_eq!(f.lines[1].text, "0 of 1 match · 0 picked");
        assert_eq!(f.lines[2].text, "  no table name contains \"rows\"");
    }

    #[test]
    fn the_summary_is_a_short_list() {
        let names: Vec<String> = (1..=19).map(|n| format!("public.t{n:02}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            summary(&names, 200),
            "Tables to copy: public.t01, public.t02, public.t03, public.t04, public.t05 and 14 more"
        );
        assert_eq!(
            summary(&names, 59),
            "Tables to copy: public.t01, public.t02 and 17 more"
        );
        assert_eq!(
            summary(&names[..3], 59),
            "Tables to copy: public.t01, public.t02, public.t03"
        );
        let long = [
            "public.a_table_with_a_name_far_longer_than_sixty_columns",
            "b",
        ];
        let line = summary(&long, 59);
        assert!(line.width() <= 59, "{line}");
        assert!(line.ends_with("… and 1 more"), "{line}");
    }

    #[test]
    fn wide_characters_count_as_two_columns() {
        assert_eq!(fit("表表表表", 5), "表表…");
        assert_eq!(fit("short", 5), "short");
    }
}

//! The errors of asking in a terminal, for the prompts and the picker alike.

use pgbarge::{Error, Kind};

/// The user said no to a question (Esc, Ctrl-C) before anything was written.
pub fn cancelled_error() -> Error {
    Error::new(Kind::Interrupted, "cancelled; nothing was written.")
}

/// The terminal failed us while asking (it went away, or is not one).
pub fn terminal_error(e: std::io::Error) -> Error {
    Error::new(Kind::Usage, format!("cannot ask in this terminal: {e}"))
}

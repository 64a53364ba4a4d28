//! Condition list operations with the reference's write semantics (spec §3.2): a condition
//! that is re-written with a new status (or any `Idle` write) moves to the end of the list,
//! because the `State` and `Details` printer columns show the last condition.
//! `lastTransitionTime` changes only when the status changes.

use lca_api::{Condition, Time};

/// Status values of a condition.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";

/// The condition of `type_`, if any.
pub fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// True when the condition of `type_` exists with status `status`.
pub fn has_status(conds: &[Condition], type_: &str, status: &str) -> bool {
    find(conds, type_).is_some_and(|c| c.status == status)
}

/// Remove the condition of `type_`; no-op when absent.
pub fn remove(conds: &mut Vec<Condition>, type_: &str) {
    conds.retain(|c| c.type_ != type_);
}

/// What to write: one condition's type, status, reason and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl<'a> Write<'a> {
    pub const fn new(type_: &'a str, status: &'a str, reason: &'a str, message: &'a str) -> Self {
        Self {
            type_,
            status,
            reason,
            message,
        }
    }
}

/// The API server's limit on a condition message (`maxLength` of metav1.Condition.message).
pub const MAX_MESSAGE_BYTES: usize = 32768;

/// `message` cut to fit [`MAX_MESSAGE_BYTES`]: a longer one would make the whole status
/// write fail, and the user would see nothing. The head is kept (it names what failed) and
/// the end says how much was cut.
pub fn bounded_message(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.into();
    }
    // Room for the suffix, whose number has at most 10 digits.
    let mut end = MAX_MESSAGE_BYTES - 64;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    format!("{}... (message truncated: {cut} more bytes)", &message[..end]).into()
}

/// Set a condition with the reference's ordering rules, stamping `generation` and `now`.
pub fn set(conds: &mut Vec<Condition>, w: Write<'_>, generation: i64, now: &Time) {
    let message = bounded_message(w.message);
    let w = Write {
        message: &message,
        ..w
    };
    if let Some(i) = conds.iter().position(|c| c.type_ == w.type_) {
        let moves = conds[i].status != w.status || w.type_ == lca_api::consts::condition_types::IDLE;
        if moves && i + 1 != conds.len() {
            conds.remove(i);
        }
    }
    match conds.iter_mut().find(|c| c.type_ == w.type_) {
        Some(c) => {
            if c.status != w.status {
                c.status = w.status.to_string();
                c.last_transition_time = now.clone();
            }
            c.reason = w.reason.to_string();
            c.message = w.message.to_string();
            c.observed_generation = Some(generation);
        }
        None => conds.push(Condition {
            type_: w.type_.to_string(),
            status: w.status.to_string(),
            reason: w.reason.to_string(),
            message: w.message.to_string(),
            observed_generation: Some(generation),
            last_transition_time: now.clone(),
        }),
    }
}

/// True when `reason` matches the metav1 reason pattern `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
pub fn valid_reason(reason: &str) -> bool {
    let b = reason.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':');
    let last_ok = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    match b {
        [] => false,
        [first] => first.is_ascii_alphabetic(),
        [first, mid @ .., last] => first.is_ascii_alphabetic() && mid.iter().all(inner) && last_ok(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lca_api::consts::{condition_types as ct, reasons as r};

    fn t(secs: i64) -> Time {
        Time(lca_api::jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    fn types(c: &[Condition]) -> Vec<&str> {
        c.iter().map(|c| c.type_.as_str()).collect()
    }

    #[test]
    fn rewrite_with_new_status_moves_to_end_and_stamps_time() {
        let mut c = Vec::new();
        set(
            &mut c,
            Write::new(ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS, "In progress"),
            1,
            &t(1),
        );
        set(
            &mut c,
            Write::new(ct::PREP_COMPLETED, FALSE, r::FAILED, "x"),
            1,
            &t(2),
        );
        set(
            &mut c,
            Write::new(ct::PREP_IN_PROGRESS, FALSE, r::COMPLETED, "Prep completed"),
            2,
            &t(3),
        );
        assert_eq!(types(&c), [ct::PREP_COMPLETED, ct::PREP_IN_PROGRESS]);
        assert_eq!(c[1].last_transition_time, t(3));
        assert_eq!(c[1].observed_generation, Some(2));
    }

    #[test]
    fn rewrite_with_same_status_keeps_place_and_time() {
        let mut c = Vec::new();
        set(
            &mut c,
            Write::new(ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS, "In progress"),
            1,
            &t(1),
        );
        set(
            &mut c,
            Write::new(ct::PREP_COMPLETED, FALSE, r::FAILED, "x"),
            1,
            &t(2),
        );
        set(
            &mut c,
            Write::new(
                ct::PREP_IN_PROGRESS,
                TRUE,
                r::IN_PROGRESS,
                "Precache job in progress",
            ),
            1,
            &t(3),
        );
        assert_eq!(types(&c), [ct::PREP_IN_PROGRESS, ct::PREP_COMPLETED]);
        assert_eq!(c[0].last_transition_time, t(1));
        assert_eq!(c[0].message, "Precache job in progress");
    }

    #[test]
    fn idle_always_moves_to_end() {
        let mut c = Vec::new();
        set(
            &mut c,
            Write::new(ct::IDLE, FALSE, r::IN_PROGRESS, "In progress"),
            1,
            &t(1),
        );
        set(
            &mut c,
            Write::new(ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS, "In progress"),
            1,
            &t(1),
        );
        set(
            &mut c,
            Write::new(ct::IDLE, FALSE, r::ABORTING, "Aborting"),
            1,
            &t(2),
        );
        assert_eq!(types(&c), [ct::PREP_IN_PROGRESS, ct::IDLE]);
        // The reference removes and re-appends it, so even the same status gets a new time.
        assert_eq!(c[1].last_transition_time, t(2));
    }

    #[test]
    fn reason_pattern() {
        for ok in ["Idle", "InProgress", "A", "a_b", "x,y:z_1"] {
            assert!(valid_reason(ok), "{ok}");
        }
        for bad in ["", "1abc", "In progress", "abc:", "abc,", "-x"] {
            assert!(!valid_reason(bad), "{bad}");
        }
    }
}

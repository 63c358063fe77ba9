//! Bounds on what a script can make the shell itself do on the host: how deep it nests,
//! how many threads it starts and how much memory its values take. A wasm process is
//! bounded by the runtime; these bound the interpreter that drives them.
//!
//! Hitting any bound is fatal for the whole step (like a real shell that runs out of
//! stack or `fork`s): the first error is kept in the step's [`Budget`], printed once,
//! every shell of the step stops at its next command, and the step fails with it.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Deepest nesting of function calls, subshells, `eval`, `.`, `$(…)`, `sh -c` and
/// compound commands. dash and bash finish `f 0` recursing 5,000 calls deep (each call
/// is two levels here: the call and its body), so this is well above that; every level
/// runs with [`RED_ZONE`] of stack guaranteed, so the cost of the limit is heap memory:
/// `f(){ f; }; f` peaks at ~180 MiB RSS in a debug build of kiln (~9 KiB a level).
pub const MAX_NESTING: u32 = 20_000;

/// Deepest syntactic nesting a script may have when parsed (`(`, `{`, `$(`, `((`,
/// `if`/`case`/loops). brush-parser is recursive, so this bounds its stack use; real
/// scripts nest a few dozen levels.
pub const MAX_PARSE_NESTING: usize = 1_000;

/// Stack brush-parser may use per nesting level: measured at most 16.5 KiB in a debug
/// build (`if`/`{` blocks; `$(…)` 12 KiB, `${a:-…}` 15 KiB, arithmetic unary operators
/// and parentheses 11.5 KiB, binary operators 0.5 KiB), doubled for margin. A parse
/// runs with `(levels + 8) ×` this guaranteed, on a heap segment when the thread's own
/// stack has less left ([`MAX_PARSE_NESTING`] levels: 32 MiB of address space).
pub(crate) const PARSE_STACK_PER_LEVEL: usize = 32 * 1024;

/// Longest arithmetic expression after expansion (its unary operators and parentheses
/// also count against [`MAX_PARSE_NESTING`], see [`arith_nesting`]): evaluation recurses
/// per operator; real expressions are a few dozen bytes.
pub const MAX_ARITH_LEN: usize = 16 * 1024;

/// Deepest chain of variables whose values are arithmetic expressions (`x=y y=x; $((x))`
/// would otherwise recurse forever). bash's own limit for this is 1024.
pub(crate) const MAX_ARITH_DEPTH: u32 = 1_024;

/// Stack left free before every nesting level; when less remains, the interpreter
/// continues on a new [`STACK_SEGMENT`] on the heap (the `stacker` crate), so any
/// thread's stack suffices for [`MAX_NESTING`]. One level of the interpreter (call →
/// run_compound → list → pipeline → simple command → expansion) takes well under this
/// in a debug build, and a wasm process started from it gets [`SPAWN_RED_ZONE`].
pub(crate) const RED_ZONE: usize = 256 * 1024;

/// Stack needed below a call into the runtime: wasmtime's default maximum wasm stack is
/// 512 KiB and its host frames (and a guest spawning a command back into the shell)
/// need room too.
pub(crate) const SPAWN_RED_ZONE: usize = 2 << 20;

/// Size of each extra stack segment allocated when a thread's own stack runs low.
pub(crate) const STACK_SEGMENT: usize = 8 << 20;

/// Stack of a pipeline-stage, background-job or `$(…)` thread. Small, since deeper
/// recursion continues on heap segments (see [`RED_ZONE`]); a bomb of
/// [`MAX_SHELL_THREADS`] threads reserves 1 GiB of address space, not 4.
pub(crate) const THREAD_STACK: usize = 2 << 20;

/// Shell threads (pipeline stages, background jobs) alive at once in one step. Matches
/// the runtime's default process limit: each is a process in a real shell. With the
/// runtime host they also take a place in the step's process budget, shared with wasm
/// processes.
pub const MAX_SHELL_THREADS: u32 = 512;

/// Default bytes of shell values (all variables of one shell, any single value or
/// expansion result, a `read` line, a `$(…)` capture, a here-document). Values live on
/// the host, outside any wasm memory limit; RUN scripts keep file contents in files,
/// so 256 MiB is generous while keeping a hostile `x=$x$x` loop far from the host's
/// memory. The engine may set it from `--memory` ([`crate::ShellOptions::memory_limit`]).
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// A bound the script hit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Too many nested calls, subshells, evals or compound commands.
    #[error(
        "nesting too deep (limit {limit} levels of function calls, subshells, eval, `.`, $(…) and compound commands): the script recurses without end or too deep"
    )]
    Nesting {
        /// [`MAX_NESTING`].
        limit: u32,
    },
    /// The script text nests too deeply to parse.
    #[error(
        "script nesting too deep to parse (limit {limit} levels of (…), {{…}}, $(…), $((…)) and compound commands)"
    )]
    ParseNesting {
        /// [`MAX_PARSE_NESTING`].
        limit: usize,
    },
    /// An arithmetic expression is too long or its variables refer to each other too deep.
    #[error("arithmetic expression too complex (limit {limit} {what})")]
    Arith {
        /// The bound.
        limit: usize,
        /// What it counts.
        what: &'static str,
    },
    /// Too many shell threads (and wasm processes) at once.
    #[error(
        "too many processes (limit {limit}): pipeline stages, background jobs and subshells alive at once; the script forks without end (the limit is fixed)"
    )]
    Processes {
        /// The step's process limit.
        limit: u32,
    },
    /// The host refused a new thread.
    #[error("cannot start a thread for {what}: {reason}")]
    Spawn {
        /// A pipeline stage, a background job.
        what: &'static str,
        /// The OS error.
        reason: String,
    },
    /// A value or the shell's variables outgrew the memory budget.
    #[error(
        "shell memory limit exceeded by {what} (limit {limit} bytes of shell values; raise it with --memory)"
    )]
    Memory {
        /// The shell's memory budget.
        limit: usize,
        /// What grew too big.
        what: &'static str,
    },
}

/// The bounds shared by every shell and thread of one step.
#[derive(Debug)]
pub struct Budget {
    memory: usize,
    max_threads: u32,
    threads: AtomicU32,
    /// Bytes of variables and saved call frames held by all shells of the step.
    used: AtomicUsize,
    tripped: OnceLock<LimitError>,
}

impl Budget {
    /// A budget with `memory` bytes of shell values and the default thread limit.
    pub fn new(memory: usize) -> Budget {
        Budget {
            memory,
            max_threads: MAX_SHELL_THREADS,
            threads: AtomicU32::new(0),
            used: AtomicUsize::new(0),
            tripped: OnceLock::new(),
        }
    }

    /// The memory budget in bytes.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Fails with [`LimitError::Memory`] when `len` bytes of `what` exceed the budget.
    pub(crate) fn check_memory(&self, len: usize, what: &'static str) -> Result<(), LimitError> {
        if len > self.memory {
            return Err(LimitError::Memory {
                limit: self.memory,
                what,
            });
        }
        Ok(())
    }

    /// Fails with [`LimitError::Memory`] when the values all shells of the step hold
    /// exceed the budget (checked after a subshell copies its parent's variables).
    pub(crate) fn check_used(&self) -> Result<(), LimitError> {
        self.check_memory(self.used.load(Ordering::Acquire), "the shell's variables")
    }

    /// Bytes all shells of the step hold in variables and saved call frames.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Fails with [`LimitError::Memory`] if `add` more held bytes would exceed the budget.
    pub(crate) fn check_growth(&self, add: usize) -> Result<(), LimitError> {
        let used = self.used.load(Ordering::Acquire);
        self.check_memory(used.saturating_add(add), "the shell's variables")
    }

    /// Takes a thread place; the slot gives it back when dropped.
    pub(crate) fn enter_thread(self: &Arc<Self>) -> Result<ThreadSlot, LimitError> {
        let before = self.threads.fetch_add(1, Ordering::AcqRel);
        let slot = ThreadSlot(self.clone());
        if before >= self.max_threads {
            return Err(LimitError::Processes {
                limit: self.max_threads,
            });
        }
        Ok(slot)
    }

    /// Records `e` as the step's fatal error (the first one wins); true if it was first.
    pub(crate) fn trip(&self, e: LimitError) -> bool {
        self.tripped.set(e).is_ok()
    }

    /// The fatal error, once one was hit.
    pub(crate) fn tripped(&self) -> Option<&LimitError> {
        self.tripped.get()
    }
}

/// Bytes one shell holds in variables and saved call frames, counted in its step's
/// [`Budget`]: a subshell's copy counts again (it is a copy), dropping it gives it back.
#[derive(Debug)]
pub struct Held {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Held {
    /// Nothing held yet, against `budget`.
    pub fn new(budget: Arc<Budget>) -> Held {
        Held { budget, bytes: 0 }
    }

    /// The step's budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Gives back `n` bytes.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.budget.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Counts `n` more bytes without checking (the memory exists already: restored
    /// variables, a copy made for a subshell); [`Budget::check_used`] catches the excess.
    pub(crate) fn add_unchecked(&mut self, n: usize) {
        self.bytes += n;
        self.budget.used.fetch_add(n, Ordering::AcqRel);
    }

    /// Moves this shell to another budget (a fresh shell's budget is replaced by its
    /// step's right after creation).
    pub(crate) fn rebind(&mut self, budget: Arc<Budget>) {
        let n = self.bytes;
        self.release(n);
        self.budget = budget;
        self.add_unchecked(n);
    }
}

impl Clone for Held {
    fn clone(&self) -> Held {
        let mut h = Held::new(self.budget.clone());
        h.add_unchecked(self.bytes);
        h
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let n = self.bytes;
        self.release(n);
    }
}

/// One place in a [`Budget`]'s thread count.
#[derive(Debug)]
pub struct ThreadSlot(Arc<Budget>);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        self.0.threads.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Maximum syntactic nesting of `src`, counted so it never under-counts what
/// brush-parser recurses on: `(`, `{` and block keywords in command position open a
/// level, and a closer only ends the level it matches (so the `)` of a `case` pattern
/// cannot cancel an earlier `(`). Single-quoted text and comments are skipped; anything
/// else only ever over-counts, which matters only for scripts hundreds of levels deep.
pub(crate) fn parse_nesting(src: &str) -> usize {
    let b = src.as_bytes();
    let mut open: Vec<u8> = Vec::new();
    let (mut max, mut i) = (0usize, 0usize);
    // At the start of a word / at the start of a command (where keywords are keywords).
    let (mut word_start, mut cmd_pos) = (true, true);
    while i < b.len() {
        let c = b[i];
        if word_start && c.is_ascii_alphabetic() {
            let end = b[i..]
                .iter()
                .position(|c| !c.is_ascii_alphanumeric() && *c != b'_')
                .map_or(b.len(), |n| i + n);
            let word = &src[i..end];
            if cmd_pos {
                nest_keyword(word, &mut open);
            }
            cmd_pos = matches!(
                word,
                "then" | "do" | "else" | "elif" | "if" | "while" | "until"
            );
            max = max.max(open.len());
            word_start = false;
            i = end;
            continue;
        }
        match c {
            b'\\' => i += 1,
            b'\'' => {
                i += b[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |n| n + 1)
            }
            b'#' if word_start => {
                i += b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| n.saturating_sub(1))
            }
            b'(' | b'{' => open.push(c),
            b')' => close(&mut open, b'('),
            b'}' => close(&mut open, b'{'),
            _ => {}
        }
        max = max.max(open.len());
        word_start = !c.is_ascii_alphanumeric() && c != b'_';
        if b";&|(){\n".contains(&c) {
            cmd_pos = true;
        } else if !c.is_ascii_whitespace() {
            cmd_pos = false;
        }
        i += 1;
    }
    max
}

/// Opens or closes the level of a block keyword: `i`f, `c`ase, `l`oop.
fn nest_keyword(word: &str, open: &mut Vec<u8>) {
    match word {
        "if" => open.push(b'i'),
        "case" => open.push(b'c'),
        "while" | "until" | "for" => open.push(b'l'),
        "fi" => close(open, b'i'),
        "esac" => close(open, b'c'),
        "done" => close(open, b'l'),
        _ => {}
    }
}

/// Ends the innermost level if it is `kind`; any other closer is left as it is (a
/// `case` pattern's `)`, or a syntax error brush-parser will report).
fn close(open: &mut Vec<u8>, kind: u8) {
    if open.last() == Some(&kind) {
        open.pop();
    }
}

/// Most `(` left open inside a `$(…)` of a word or here-document that is handed to
/// brush-parser's word parser, which backtracks exponentially on them (each doubles the
/// time: 16 take 0.2 s in a debug build, 35 hang); dash rejects them too ("Missing ')'").
/// The same bound applies to `(` left open at the end of a whole script, on which the
/// main parser's arithmetic rules backtrack the same way (64 ran for minutes); a valid
/// script leaves none open.
pub(crate) const MAX_UNCLOSED_PARENS: usize = 8;

/// How many `(` are still open at the end of `text` inside a `$(` (quotes inside the
/// substitution are skipped; text outside it is not counted).
pub(crate) fn unclosed_subst_parens(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'$' if depth == 0 && b.get(i + 1) == Some(&b'(') => {
                depth = 1;
                i += 1;
            }
            b'(' if depth > 0 => depth += 1,
            b')' if depth > 0 => depth -= 1,
            q @ (b'\'' | b'"') if depth > 0 => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    depth
}

/// A redirection's file descriptor number (`2>`) that does not fit an `i32`, which
/// brush-parser unwraps (a panic; found by the shell fuzzer). Quoted text is skipped;
/// such digits in a here-document body are refused too (a script would not need them).
pub(crate) fn oversized_io_number(src: &str) -> Option<&str> {
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_digit() && (i == 0 || !is_word_byte(b[i - 1])) => {
                let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                let digits = &src[i..end];
                if matches!(b.get(end), Some(b'<' | b'>')) && digits.parse::<i32>().is_err() {
                    return Some(digits);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    None
}

fn is_word_byte(c: u8) -> bool {
    !c.is_ascii_whitespace() && !b";&|()<>".contains(&c)
}

/// Upper bound on how deep brush-parser's arithmetic grammar recurses for `text`: each
/// parenthesis and each character that can be a unary operator may open a level.
pub(crate) fn arith_nesting(text: &str) -> usize {
    text.bytes().filter(|b| b"()!~-+".contains(b)).count()
}

/// Runs `f`, a recursive parser over input nesting `levels` deep, with enough stack for
/// it (see [`PARSE_STACK_PER_LEVEL`]); refuses more than [`MAX_PARSE_NESTING`] levels.
pub(crate) fn bounded_parse<T>(levels: usize, f: impl FnOnce() -> T) -> Result<T, LimitError> {
    if levels > MAX_PARSE_NESTING {
        return Err(LimitError::ParseNesting {
            limit: MAX_PARSE_NESTING,
        });
    }
    let need = (levels + 8) * PARSE_STACK_PER_LEVEL;
    Ok(stacker::maybe_grow(need, need.max(STACK_SEGMENT), f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_and_keywords() {
        assert_eq!(parse_nesting("echo hi"), 0);
        assert_eq!(parse_nesting("( ( echo ) )"), 2);
        assert_eq!(parse_nesting("x=$(echo $(echo a))"), 2);
        assert_eq!(parse_nesting("if true; then while :; do :; done; fi"), 2);
        assert_eq!(parse_nesting("echo '((((' \\("), 0);
        assert_eq!(parse_nesting("echo iffy done_x if"), 0);
        assert_eq!(parse_nesting("# ((((\necho"), 0);
        // A case pattern's `)` does not close the subshells around it.
        let sneaky = "( ( ( case x in a) ;; b) ;; c) ;; esac ) ) )";
        assert_eq!(parse_nesting(sneaky), 4);
    }

    #[test]
    fn oversized_redirection_numbers() {
        assert_eq!(
            oversized_io_number("echo 99999999999>x"),
            Some("99999999999")
        );
        assert_eq!(
            oversized_io_number("echo;12345678901<x"),
            Some("12345678901")
        );
        assert_eq!(oversized_io_number("echo 2>x 2147483647>y"), None);
        assert_eq!(
            oversized_io_number("echo '99999999999>x' a99999999999>x"),
            None
        );
    }

    #[test]
    fn unclosed_parens_in_substitutions() {
        assert_eq!(unclosed_subst_parens("a((((b $(echo (x)) c"), 0);
        assert_eq!(unclosed_subst_parens("$(echo a((((b"), 5);
        assert_eq!(unclosed_subst_parens("$(echo '((((' \"((\")"), 0);
        assert_eq!(unclosed_subst_parens("\"$(echo a((b\""), 3);
    }

    #[test]
    fn thread_slots_are_counted_and_returned() {
        let b = Arc::new(Budget {
            max_threads: 2,
            ..Budget::new(1)
        });
        let s1 = b.enter_thread().unwrap();
        let _s2 = b.enter_thread().unwrap();
        assert_eq!(
            b.enter_thread().unwrap_err(),
            LimitError::Processes { limit: 2 }
        );
        drop(s1);
        assert!(b.enter_thread().is_ok());
    }

    #[test]
    fn held_bytes_are_shared_by_copies_and_returned() {
        let b = Arc::new(Budget::new(100));
        let mut h = Held::new(b.clone());
        h.add_unchecked(60);
        let copy = h.clone();
        assert!(b.check_used().is_err(), "two copies of 60 bytes exceed 100");
        drop(copy);
        assert!(b.check_used().is_ok());
        assert!(b.check_growth(41).is_err());
        assert!(b.check_growth(40).is_ok());
        h.release(50);
        drop(h);
        assert_eq!(b.used.load(Ordering::Acquire), 0);
    }

    #[test]
    fn first_trip_wins() {
        let b = Budget::new(10);
        assert!(b.check_memory(10, "x").is_ok());
        let e = b.check_memory(11, "a value").unwrap_err();
        assert!(e.to_string().contains("limit 10 bytes"), "{e}");
        assert!(b.trip(e.clone()));
        assert!(!b.trip(LimitError::Nesting { limit: 1 }));
        assert_eq!(b.tripped(), Some(&e));
    }
}

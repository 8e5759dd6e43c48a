//! The `msisdn` schema's pattern: every valid number as one regular expression, so a client
//! (or a property-based tester) can tell a valid `msisdn` from an invalid one without
//! libphonenumber. The rule itself, and the metadata it runs on, are
//! [`waotp_core::numbering`]'s; only the document needs it written out.
//!
//! A regular expression cannot say "the first region whose leading digits match" or "matches
//! both the general and a type pattern" directly (it has no intersection, and lookarounds are
//! not portable), so the rule is evaluated instead: for each calling code, the DFAs of all its
//! regions' patterns run side by side over every digit string of allowed length, the strings
//! the rule accepts form a finite automaton, which is minimised and written back out as a
//! regular expression. Whole runs of "any digits" are written as counted repetitions. Where the
//! calling code's main region has a national prefix, the national number may follow it (as
//! [`waotp_core::numbering::normalise`] strips it), within the same limit of digits as written.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

use waotp_core::numbering::{plans, RegionPatterns, MAX_DIGITS};

/// Every valid number (digits only: calling code, then national number), as a regular
/// expression without anchors.
pub fn pattern() -> &'static str {
    &WRITTEN.0
}

/// The fewest and the most digits of a valid number.
pub fn digit_bounds() -> (usize, usize) {
    WRITTEN.1
}

static WRITTEN: LazyLock<(String, (usize, usize))> = LazyLock::new(|| {
    let (mut fewest, mut most) = (usize::MAX, 0);
    let mut bound = |written: usize, (low, high): (usize, usize)| {
        fewest = fewest.min(written + low);
        most = most.max(written + high);
    };
    let codes: Vec<String> = plans()
        .iter()
        .filter_map(|plan| {
            let code_text = plan.code.to_string();
            let mut product = Product::new(&plan.regions, MAX_DIGITS - code_text.len());
            let root = product.explore(product.start(), 0)?;
            // After the national prefix the national number has that many digits fewer left:
            // the same exploration, started that far in.
            let prefixed = plan.prefix.as_ref().and_then(|p| Some((p, product.explore(product.start(), p.len())?)));
            bound(code_text.len(), lengths(&product.nodes, root));
            let mut writer = Writer::new(&product.nodes);
            let (national, _) = writer.write(root);
            let national = match prefixed {
                None => group(&national),
                Some((prefix, after)) => {
                    bound(code_text.len() + prefix.len(), lengths(&product.nodes, after));
                    if after == root {
                        format!("(?:{prefix})?{}", group(&national))
                    } else {
                        let (after, _) = writer.write(after);
                        format!("(?:{prefix}{}|{national})", group(&after))
                    }
                }
            };
            Some(format!("{code_text}{national}"))
        })
        .collect();
    (format!("(?:{})", codes.join("|")), (fewest, most))
});

/// The shortest and the longest string a node accepts.
fn lengths(nodes: &[Node], root: u32) -> (usize, usize) {
    // Children come before their parents, so one pass in order sees them first.
    let mut bounds: Vec<(usize, usize)> = Vec::with_capacity(nodes.len());
    for (accepting, next) in nodes {
        let (mut low, mut high) = if *accepting { (0, 0) } else { (usize::MAX, 0) };
        for child in next.iter().flatten() {
            let (l, h) = bounds[*child as usize];
            (low, high) = (low.min(l + 1), high.max(h + 1));
        }
        bounds.push((low, high));
    }
    bounds[root as usize]
}

/// A pattern's DFA over bytes, searched from the start of the number.
struct Machine {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
}

impl Machine {
    fn new(pattern: &str) -> Machine {
        let dfa = dense::Builder::new()
            .configure(dense::Config::new().start_kind(StartKind::Anchored).match_kind(MatchKind::All))
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .build(pattern)
            .expect("libphonenumber pattern");
        let start = dfa.start_state(&start::Config::new().anchored(Anchored::Yes)).expect("anchored start");
        Machine { dfa, start }
    }

    /// The state after `digit`, `None` once nothing can match any more.
    fn step(&self, state: StateID, digit: u8) -> Option<StateID> {
        let next = self.dfa.next_state(state, digit);
        (!self.dfa.is_dead_state(next)).then_some(next)
    }

    /// Whether a match ends where the input read so far ends.
    fn matches_here(&self, state: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(state))
    }
}

/// A region's machines: leading digits match a prefix, the others the whole national number.
struct RegionMachines {
    leading: Option<Machine>,
    general: Machine,
    types: Machine,
}

/// Where a region's leading-digits pattern stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Leading {
    /// Not consulted (no pattern, or the calling code has one region).
    None,
    /// Not matched yet, still could.
    Pending(StateID),
    /// A prefix read so far matched.
    Hit,
    /// Can no longer match.
    Miss,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct RegionState {
    leading: Leading,
    general: Option<StateID>,
    types: Option<StateID>,
}

/// A node of the minimised automaton: accepting or not, and the node after each digit.
type Node = (bool, [Option<u32>; 10]);

struct Product {
    regions: Vec<RegionMachines>,
    max_len: usize,
    memo: HashMap<(Vec<RegionState>, usize), Option<u32>>,
    nodes: Vec<Node>,
    interned: HashMap<Node, u32>,
}

impl Product {
    fn new(patterns: &[RegionPatterns], max_len: usize) -> Product {
        let regions = patterns
            .iter()
            .map(|p| RegionMachines {
                leading: p.leading.as_ref().map(|l| Machine::new(&format!("(?:{l})"))),
                general: Machine::new(&format!("(?:{})$", p.general)),
                types: Machine::new(&format!("(?:{})$", p.types)),
            })
            .collect();
        Product { regions, max_len, memo: HashMap::new(), nodes: Vec::new(), interned: HashMap::new() }
    }

    fn start(&self) -> Vec<RegionState> {
        self.regions
            .iter()
            .map(|r| RegionState {
                leading: match &r.leading {
                    None => Leading::None,
                    Some(m) if m.matches_here(m.start) => Leading::Hit,
                    Some(m) => Leading::Pending(m.start),
                },
                general: Some(r.general.start),
                types: Some(r.types.start),
            })
            .collect()
    }

    fn step(&self, states: &[RegionState], digit: u8) -> Vec<RegionState> {
        self.regions
            .iter()
            .zip(states)
            .map(|(r, s)| RegionState {
                leading: match (s.leading, &r.leading) {
                    (Leading::Pending(id), Some(m)) => match m.step(id, digit) {
                        Some(next) if m.matches_here(next) => Leading::Hit,
                        Some(next) => Leading::Pending(next),
                        None => Leading::Miss,
                    },
                    (other, _) => other,
                },
                general: s.general.and_then(|id| r.general.step(id, digit)),
                types: s.types.and_then(|id| r.types.step(id, digit)),
            })
            .collect()
    }

    /// libphonenumber's rule for the national number read so far.
    fn accepts(&self, states: &[RegionState]) -> bool {
        for (r, s) in self.regions.iter().zip(states) {
            let valid = s.general.is_some_and(|id| r.general.matches_here(id))
                && s.types.is_some_and(|id| r.types.matches_here(id));
            match s.leading {
                Leading::Hit => return valid,
                Leading::Pending(_) | Leading::Miss => {}
                Leading::None if valid => return true,
                Leading::None => {}
            }
        }
        false
    }

    /// The node for the numbers that continue from `states` at length `len`, if any.
    fn explore(&mut self, states: Vec<RegionState>, len: usize) -> Option<u32> {
        let key = (states, len);
        if let Some(known) = self.memo.get(&key) {
            return *known;
        }
        let states = &key.0;
        let accepting = self.accepts(states);
        let mut next = [None; 10];
        if len < self.max_len {
            for (digit, slot) in (b'0'..=b'9').zip(next.iter_mut()) {
                let after = self.step(states, digit);
                if after.iter().any(|s| s.general.is_some() && s.types.is_some()) {
                    *slot = self.explore(after, len + 1);
                }
            }
        }
        let node = (accepting || next.iter().any(Option::is_some)).then(|| {
            let node = (accepting, next);
            *self.interned.entry(node).or_insert_with(|| {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            })
        });
        self.memo.insert(key, node);
        node
    }
}

/// Writes a node as a regular expression.
struct Writer<'a> {
    nodes: &'a [Node],
    /// Per node: if it accepts exactly the digit strings of some lengths, those lengths.
    any_digits: Vec<Option<u32>>,
    written: HashMap<u32, (String, bool)>,
}

impl<'a> Writer<'a> {
    fn new(nodes: &'a [Node]) -> Writer<'a> {
        // Children are interned before their parents, so one pass in order sees them first.
        let mut any_digits: Vec<Option<u32>> = Vec::with_capacity(nodes.len());
        for (accepting, next) in nodes {
            let lengths = match next {
                [None, None, None, None, None, None, None, None, None, None] => Some(0),
                [Some(first), rest @ ..] if rest.iter().all(|n| *n == Some(*first)) => {
                    any_digits[*first as usize].map(|l| l << 1)
                }
                _ => None,
            };
            any_digits.push(lengths.map(|l| l | u32::from(*accepting)));
        }
        Writer { nodes, any_digits, written: HashMap::new() }
    }

    /// The expression of a node, and whether it is an alternation at its top level.
    fn write(&mut self, id: u32) -> (String, bool) {
        if let Some(known) = self.written.get(&id) {
            return known.clone();
        }
        let written = self.compose(id);
        self.written.insert(id, written.clone());
        written
    }

    fn compose(&mut self, id: u32) -> (String, bool) {
        if let Some(lengths) = self.any_digits[id as usize].filter(|l| *l != 1) {
            let (low, high) = (lengths.trailing_zeros(), 31 - lengths.leading_zeros());
            if lengths.count_ones() == high - low + 1 {
                return (format!("[0-9]{}", quantifier(low, high)), false);
            }
        }
        let (accepting, next) = self.nodes[id as usize];
        // A run of "any digit, then the same node": one counted repetition.
        if let [Some(first), rest @ ..] = next {
            if !accepting && rest.iter().all(|n| *n == Some(first)) {
                let (mut count, mut node) = (1, first);
                while let (false, [Some(first), rest @ ..]) = self.nodes[node as usize] {
                    if !rest.iter().all(|n| *n == Some(first)) {
                        break;
                    }
                    (count, node) = (count + 1, first);
                }
                let (tail, _) = self.write(node);
                return (format!("[0-9]{}{}", quantifier(count, count), group(&tail)), false);
            }
        }
        let mut children: Vec<(u32, Vec<u8>)> = Vec::new();
        for (digit, child) in (0u8..).zip(next) {
            let Some(child) = child else { continue };
            match children.iter_mut().find(|(c, _)| *c == child) {
                Some((_, digits)) => digits.push(digit),
                None => children.push((child, vec![digit])),
            }
        }
        let alternatives: Vec<String> = children
            .into_iter()
            .map(|(child, digits)| {
                let (tail, _) = self.write(child);
                format!("{}{}", class(&digits), group(&tail))
            })
            .collect();
        match (accepting, alternatives.len()) {
            (_, 0) => (String::new(), false),
            (false, 1) => (alternatives[0].clone(), false),
            (false, _) => (alternatives.join("|"), true),
            (true, _) => (format!("(?:{})?", alternatives.join("|")), false),
        }
    }
}

/// An expression ready to follow another: alternations get a group.
fn group(expression: &str) -> String {
    if top_level_alternation(expression) {
        format!("(?:{expression})")
    } else {
        expression.to_owned()
    }
}

fn top_level_alternation(expression: &str) -> bool {
    let mut depth = 0i32;
    let mut in_class = false;
    for c in expression.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth -= 1,
            '|' if !in_class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

fn quantifier(low: u32, high: u32) -> String {
    match (low, high) {
        (1, 1) => String::new(),
        (0, 1) => "?".into(),
        (l, h) if l == h => format!("{{{l}}}"),
        (l, h) => format!("{{{l},{h}}}"),
    }
}

/// A character class of ascending digits (`7`, `[0-35-9]`).
fn class(digits: &[u8]) -> String {
    if digits.len() == 1 {
        return digits[0].to_string();
    }
    let mut out = String::from("[");
    let mut i = 0;
    while i < digits.len() {
        let mut j = i;
        while j + 1 < digits.len() && digits[j + 1] == digits[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => out.push_str(&digits[i].to_string()),
            1 => out.push_str(&format!("{}{}", digits[i], digits[j])),
            _ => out.push_str(&format!("{}-{}", digits[i], digits[j])),
        }
        i = j + 1;
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use phonenumber::metadata::DATABASE;
    use regex::Regex;
    use waotp_core::numbering::{is_valid, Plan, TYPES};

    use super::*;

    /// The written-out pattern accepts exactly what the rule accepts, on every example number of
    /// the metadata, written with and without the national prefix, and on every one-digit
    /// change, deletion and insertion of each.
    #[test]
    fn the_pattern_says_what_the_rule_says() {
        let whole = Regex::new(&format!("^{}$", pattern())).unwrap();
        let mut checked = 0;
        for Plan { code, prefix, .. } in plans() {
            for meta in DATABASE.by_code(code).unwrap() {
                let examples = TYPES.iter().filter_map(|t| meta.descriptors().get(*t)?.example());
                let prefixes = [Some(""), prefix.as_deref()].into_iter().flatten();
                for (example, prefix) in examples.flat_map(|e| prefixes.clone().map(move |p| (e, p))) {
                    let number: Vec<u8> = format!("{code}{prefix}{example}").into_bytes();
                    let mut variants = vec![number.clone()];
                    for i in 0..=number.len() {
                        for d in b'0'..=b'9' {
                            let mut inserted = number.clone();
                            inserted.insert(i, d);
                            variants.push(inserted);
                            if i < number.len() {
                                let mut changed = number.clone();
                                changed[i] = d;
                                variants.push(changed);
                            }
                        }
                        if i < number.len() {
                            let mut removed = number.clone();
                            removed.remove(i);
                            variants.push(removed);
                        }
                    }
                    for v in variants {
                        let v = String::from_utf8(v).unwrap();
                        assert_eq!(whole.is_match(&v), is_valid(&v), "{v}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
        let (fewest, most) = digit_bounds();
        assert!((4..=8).contains(&fewest) && (13..=MAX_DIGITS).contains(&most), "{fewest}..={most}");
    }

    /// A national prefix after the calling code, once, before a valid national number, within
    /// the limit of digits as written: as [`waotp_core::numbering::normalise`] takes it.
    #[test]
    fn the_pattern_takes_the_national_prefix_as_the_rule_does() {
        let whole = Regex::new(&format!("^{}$", pattern())).unwrap();
        for number in
            ["49997999999999999", "490997999999999999", "4909979999999999", "62081234567890", "620081234567890"]
        {
            assert_eq!(whole.is_match(number), is_valid(number), "{number}");
        }
    }
}

//! The expansion check: what `<use>` references and path data would cost once drawn,
//! counted before anything is rendered.

use std::collections::{HashMap, HashSet};

use super::limits::{MAX_DEPTH, MAX_PATH_NUMBERS, MAX_RENDERED, Refusal, XLINK_NS, too_complex};

/// The size of a node's subtree as usvg expands it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cost {
    /// Elements, copies included.
    pub(super) elements: u64,
    /// Elements plus text characters plus a sixteenth of the coordinates: what usvg builds.
    pub(super) weight: u64,
    /// Path and polygon coordinates.
    pub(super) numbers: u64,
    /// Levels of nesting.
    pub(super) height: u32,
}

impl Cost {
    pub(super) fn add(&mut self, other: Cost, times: u64) {
        self.elements = self
            .elements
            .saturating_add(other.elements.saturating_mul(times));
        self.weight = self
            .weight
            .saturating_add(other.weight.saturating_mul(times));
        self.numbers = self
            .numbers
            .saturating_add(other.numbers.saturating_mul(times));
    }
}

/// Stage 2 of the budget: the drawing as usvg will expand it.
pub(super) struct Expansion<'a, 'input> {
    pub(super) ids: HashMap<&'a str, roxmltree::Node<'a, 'input>>,
    pub(super) memo: HashMap<roxmltree::NodeId, Cost>,
    pub(super) visiting: HashSet<roxmltree::NodeId>,
}

impl<'a, 'input> Expansion<'a, 'input> {
    pub(super) fn check(doc: &'a roxmltree::Document<'input>) -> Result<(), Refusal> {
        let mut ids = HashMap::new();
        for n in doc.descendants().filter(|n| n.is_element()) {
            if let Some(id) = n.attribute("id") {
                ids.entry(id).or_insert(n);
            }
        }
        let mut e = Expansion {
            ids,
            memo: HashMap::new(),
            visiting: HashSet::new(),
        };
        let mut total = e.cost(doc.root_element(), 0)?;
        // A stylesheet's references may apply to every element.
        for style in doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "style")
        {
            for child in style.children().filter(|c| c.is_text()) {
                for id in url_refs(child.text().unwrap_or("")) {
                    if let Some(&target) = e.ids.get(id) {
                        let c = e.cost(target, 1)?;
                        let times = total.elements.max(total.numbers.saturating_add(2));
                        total.add(c, times);
                    }
                }
            }
        }
        Self::within(&total)
    }

    pub(super) fn within(c: &Cost) -> Result<(), Refusal> {
        if c.weight > MAX_RENDERED {
            return Err(too_complex(
                "more elements than allowed once `use` and references are expanded",
            ));
        }
        if c.numbers > MAX_PATH_NUMBERS {
            return Err(too_complex(
                "more path coordinates than allowed once expanded",
            ));
        }
        Ok(())
    }

    pub(super) fn cost(
        &mut self,
        n: roxmltree::Node<'a, 'input>,
        depth: u32,
    ) -> Result<Cost, Refusal> {
        if let Some(c) = self.memo.get(&n.id()) {
            if depth + c.height > MAX_DEPTH {
                return Err(too_complex("nested too deeply through `use`"));
            }
            return Ok(*c);
        }
        if depth >= MAX_DEPTH {
            return Err(too_complex("nested too deeply through `use`"));
        }
        if !self.visiting.insert(n.id()) {
            // A reference to itself: usvg skips it.
            return Ok(Cost::default());
        }
        let mut c = Cost {
            elements: 1,
            weight: 1,
            numbers: 0,
            height: 1,
        };
        for attr in n.attributes() {
            if matches!(attr.name(), "d" | "points") {
                let k = count_numbers(attr.value());
                c.numbers = c.numbers.saturating_add(k);
                c.weight = c.weight.saturating_add(k / 16);
            }
        }
        let in_text = matches!(n.tag_name().name(), "text" | "tspan" | "textPath");
        let mut below = 0;
        for child in n.children() {
            if child.is_element() {
                let cc = self.cost(child, depth + 1)?;
                c.add(cc, 1);
                below = below.max(cc.height);
            } else if in_text && child.is_text() {
                let chars = child.text().map_or(0, |t| t.chars().count()) as u64;
                c.weight = c.weight.saturating_add(chars);
            }
            Self::within(&c)?;
        }
        // `use` (and any element's `href`) copies its target.
        let href = n
            .attribute("href")
            .or_else(|| n.attribute((XLINK_NS, "href")));
        if let Some(target) = href
            .and_then(|h| h.trim().strip_prefix('#'))
            .and_then(|id| self.ids.get(id).copied())
        {
            let tc = self.cost(target, depth + 1)?;
            c.add(tc, 1);
            below = below.max(tc.height);
        }
        // A `url(#…)` may copy its target for every element inheriting it, a marker once
        // per vertex.
        for attr in n.attributes() {
            for id in url_refs(attr.value()) {
                let Some(&target) = self.ids.get(id) else {
                    continue;
                };
                let tc = self.cost(target, depth + 1)?;
                let times = if target.tag_name().name() == "marker" {
                    c.numbers.saturating_add(2)
                } else {
                    c.elements
                };
                c.add(tc, times);
                below = below.max(tc.height);
                Self::within(&c)?;
            }
        }
        c.height = 1 + below;
        Self::within(&c)?;
        self.visiting.remove(&n.id());
        self.memo.insert(n.id(), c);
        Ok(c)
    }
}

/// How many numbers path data or a points list holds, at most.
pub(super) fn count_numbers(v: &str) -> u64 {
    let mut n = 0;
    let mut in_number = false;
    for b in v.bytes() {
        let part = b.is_ascii_digit() || b == b'.';
        if part && !in_number {
            n += 1;
        }
        in_number = part;
    }
    n
}

/// The ids of the `url(#id)` references in `v`.
pub(super) fn url_refs(v: &str) -> impl Iterator<Item = &str> {
    let lower = v.to_ascii_lowercase();
    let starts: Vec<usize> = lower.match_indices("url(").map(|(i, _)| i + 4).collect();
    starts.into_iter().filter_map(move |i| {
        let rest = v[i..].trim_start_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
        let id = rest.strip_prefix('#')?;
        let end = id
            .find(|c: char| c == ')' || c == '\'' || c == '"' || c.is_whitespace())
            .unwrap_or(id.len());
        Some(&id[..end])
    })
}

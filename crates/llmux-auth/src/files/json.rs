//! Finds the byte range of each credential's `value` in JSON text with a small tokenizer. The
//! text has already parsed as JSON, so the tokenizer only has to be right on valid input; if it
//! gets lost it returns what it found so far and `rewrite` refuses the rest.

use zeroize::Zeroizing;

use super::{Slot, Style};

/// `seed`: the text is a list of credentials; otherwise an object with a `credentials` list.
pub(super) fn locate(text: &str, seed: bool) -> Vec<Slot> {
    let mut scanner = Scanner {
        text,
        pos: 0,
        slots: Vec::new(),
    };
    let top = if seed { Place::List } else { Place::Top };
    // A tokenizer failure leaves the slots found so far; the rest are refused.
    let _complete = scanner.value(top).is_some();
    scanner.slots
}

/// What the value being scanned is, as far as credentials are concerned.
#[derive(Clone, Copy)]
enum Place {
    /// The top-level object of a config file.
    Top,
    /// The credentials list.
    List,
    /// Credential number `n`.
    Credential(usize),
    /// The `value` of credential number `n`.
    Value(usize),
    /// Anything else.
    Other,
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    slots: Vec<Slot>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self
            .peek()
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self, place: Place) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.object(place),
            b'[' => self.array(place),
            b'"' => {
                let (span, decoded) = self.string()?;
                if let Place::Value(index) = place {
                    self.slots.push(Slot {
                        index,
                        span,
                        style: Style::Double,
                        decoded: Ok(decoded),
                    });
                }
                Some(())
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.pos += 1;
                }
                let token = self.text.get(start..self.pos)?;
                if token.is_empty() {
                    return None;
                }
                if let Place::Value(index) = place
                    && token != "null"
                {
                    self.slots.push(Slot {
                        index,
                        span: start..self.pos,
                        style: Style::Bare,
                        decoded: Ok(Zeroizing::new(token.to_owned())),
                    });
                }
                Some(())
            }
        }
    }

    fn object(&mut self, place: Place) -> Option<()> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.skip_whitespace();
            let (_, key) = self.string()?;
            self.expect(b':')?;
            let child = match (place, key.as_str()) {
                (Place::Top, "credentials") => Place::List,
                (Place::Credential(index), "value") => Place::Value(index),
                _ => Place::Other,
            };
            self.value(child)?;
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, place: Place) -> Option<()> {
        self.expect(b'[')?;
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        let mut index = 0;
        loop {
            let child = match place {
                Place::List => Place::Credential(index),
                _ => Place::Other,
            };
            self.value(child)?;
            index += 1;
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string token at `pos`: its span (quotes included) and its decoded text.
    fn string(&mut self) -> Option<(std::ops::Range<usize>, Zeroizing<String>)> {
        let start = self.pos;
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        let raw = self.text.get(start..self.pos)?;
        let decoded = serde_json::from_str::<String>(raw).ok()?;
        Some((start..self.pos, Zeroizing::new(decoded)))
    }
}

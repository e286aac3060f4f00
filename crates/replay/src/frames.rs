//! A connection's outgoing messages of one batch: their JSON text back to back in one reused
//! buffer and where each ends, so rendering a message allocates nothing.

/// Messages rendered for one connection, in order.
#[derive(Debug, Default)]
pub struct Frames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    /// One whole message.
    pub fn push(&mut self, message: &str) {
        self.bytes.extend_from_slice(message.as_bytes());
        self.end();
    }

    /// The buffer to append one message's text to; [`Frames::end`] marks where it ends.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the message written since the previous end.
    pub fn end(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text held (all messages).
    pub fn text_len(&self) -> usize {
        self.bytes.len()
    }

    /// The messages' text, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let m = self.bytes.get(start..end).unwrap_or_default();
            start = end;
            m
        })
    }

    /// Takes the batch's text and message ends, leaving it empty (without capacity for text).
    pub fn take(&mut self) -> (Vec<u8>, Vec<usize>) {
        let ends = self.ends.clone();
        self.ends.clear();
        (std::mem::take(&mut self.bytes), ends)
    }

    /// Empties the batch, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The messages as strings (the writers append only valid UTF-8; tests, rare paths).
    pub fn to_strings(&self) -> Vec<String> {
        self.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_clear_keeps_capacity() {
        let mut f = Frames::default();
        f.push("{\"a\":1}");
        f.buf().extend_from_slice(b"{\"b\":");
        f.buf().extend_from_slice(b"2}");
        f.end();
        f.push("");
        assert_eq!(f.len(), 3);
        assert_eq!(f.to_strings(), vec!["{\"a\":1}", "{\"b\":2}", ""]);
        let cap = f.bytes.capacity();
        f.clear();
        assert!(f.is_empty());
        assert_eq!(f.text_len(), 0);
        assert_eq!(f.bytes.capacity(), cap);
    }
}

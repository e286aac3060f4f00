//! The edge cache REST order books are served from (`--rest-book-cache-ms`).
//!
//! WIRE.md: REST order books "can be cached at the edge for a few seconds — stale by design".
//! The cache here is a warm edge: a market's entry is filled on its first request and then
//! refreshed by the publisher every `max_age` while it is still asked for, so every book REST
//! serves shows the market as it was 0..`max_age` ago — never the state at the instant of the
//! response, whoever asks and however rarely. With `max_age` zero there is no cache.

use super::Exchange;
use crate::book::Book;
use std::collections::HashMap;

/// An entry not asked for this long is dropped instead of refreshed.
const IDLE_US: i64 = 600_000_000;

#[derive(Debug, Default)]
pub struct RestCache {
    max_age_us: i64,
    entries: HashMap<u32, Entry>,
}

#[derive(Debug)]
struct Entry {
    filled_us: i64,
    asked_us: i64,
    book: Book,
}

impl RestCache {
    pub fn new(max_age_us: i64) -> RestCache {
        RestCache {
            max_age_us: max_age_us.max(0),
            entries: HashMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_age_us > 0
    }
}

impl Exchange {
    /// The book REST serves for market `m` at `now_us`: from the cache when it is on.
    pub fn rest_book(&mut self, m: u32, now_us: i64) -> Option<Book> {
        if !self.rest_cache.enabled() {
            return self.hot_mut(m).map(|h| h.book.clone());
        }
        let max_age = self.rest_cache.max_age_us;
        if let Some(e) = self.rest_cache.entries.get_mut(&m)
            && now_us - e.filled_us <= max_age
        {
            e.asked_us = now_us;
            return Some(e.book.clone());
        }
        let book = self.hot_mut(m)?.book.clone();
        self.rest_cache.entries.insert(
            m,
            Entry {
                filled_us: now_us,
                asked_us: now_us,
                book: book.clone(),
            },
        );
        Some(book)
    }

    /// Refills every entry still asked for from the live books (the publisher calls this every
    /// `max_age`); drops the idle ones.
    pub fn refresh_rest_cache(&mut self, now_us: i64) {
        let mut entries = std::mem::take(&mut self.rest_cache.entries);
        entries.retain(|_, e| now_us - e.asked_us < IDLE_US);
        for (&m, e) in entries.iter_mut() {
            if let Some(hot) = self.hot_mut(m) {
                e.book.clone_from(&hot.book);
                e.filled_us = now_us;
            }
        }
        self.rest_cache.entries = entries;
    }

    /// How often the publisher must call [`Exchange::refresh_rest_cache`] (µs; 0: never).
    pub fn rest_cache_period_us(&self) -> i64 {
        self.rest_cache.max_age_us
    }
}

//! Every metric the gatherer exports, named in one place (DESIGN §7:
//! `<component>_<noun>_total|_seconds|<gauge>`). Components: `registry`, `connection`,
//! `router`, `sequence`, `writer`, `store`, `pull`.

// Market registry.
/// Markets the registry considers active (gauge).
pub const REGISTRY_MARKETS: &str = "registry_markets";
/// Full REST syncs completed.
pub const REGISTRY_SYNCS_TOTAL: &str = "registry_syncs_total";
/// REST failures of the registry, by `kind`.
pub const REGISTRY_ERRORS_TOTAL: &str = "registry_errors_total";
/// REST retries of the registry.
pub const REGISTRY_RETRIES_TOTAL: &str = "registry_retries_total";
/// Lifecycle messages applied, by `event_type` and `channel` (`market_lifecycle_v2`,
/// `multivariate_market_lifecycle`).
pub const REGISTRY_LIFECYCLE_TOTAL: &str = "registry_lifecycle_total";
/// Seconds from a market's `created`/`activated` lifecycle message to its subscription (histogram).
pub const REGISTRY_SUBSCRIBE_DELAY_SECONDS: &str = "registry_subscribe_delay_seconds";

// Connection manager.
/// Connections currently open and subscribed (gauge).
pub const CONNECTION_UP: &str = "connection_up";
/// Connections configured (gauge).
pub const CONNECTION_CONFIGURED: &str = "connection_configured";
/// Markets subscribed to `orderbook_delta` over all connections (gauge).
pub const CONNECTION_MARKETS: &str = "connection_markets";
/// Reconnects, by `reason` (`close_1000`, `close_1001`, `close_1006`, `close_1008`,
/// `close_1011`, `close_other`, `silence`, `eof`, `read_error`, `send_failed`, `connect_failed`).
pub const CONNECTION_RECONNECTS_TOTAL: &str = "connection_reconnects_total";
/// Connection failures, by `kind`.
pub const CONNECTION_ERRORS_TOTAL: &str = "connection_errors_total";
/// Connect attempts after a failure.
pub const CONNECTION_RETRIES_TOTAL: &str = "connection_retries_total";
/// Subscribe command errors, by `code`.
pub const CONNECTION_SUBSCRIBE_ERRORS_TOTAL: &str = "connection_subscribe_errors_total";
/// Commands retried after a transient error (1, 18, 27, unknown codes), by `code`.
pub const CONNECTION_SUBSCRIBE_RETRIES_TOTAL: &str = "connection_subscribe_retries_total";
/// Connections the exchange closed with 1008 (policy violation: usually the credentials).
/// Alert on any increase.
pub const CONNECTION_POLICY_CLOSES_TOTAL: &str = "connection_policy_closes_total";
/// Handshakes refused with 401/403.
pub const CONNECTION_AUTH_FAILURES_TOTAL: &str = "connection_auth_failures_total";
/// Frames received, all kinds.
pub const CONNECTION_FRAMES_TOTAL: &str = "connection_frames_total";
/// Bytes of text/binary frames received.
pub const CONNECTION_BYTES_TOTAL: &str = "connection_bytes_total";
/// Connections replaced because they were silent too long.
pub const CONNECTION_SILENCE_TIMEOUTS_TOTAL: &str = "connection_silence_timeouts_total";

// Router.
/// Messages routed, by `type`.
pub const ROUTER_MESSAGES_TOTAL: &str = "router_messages_total";
/// Frames that failed to parse, by `kind` (`json`, `field`, `oversized`, `binary`, …).
pub const ROUTER_PARSE_ERRORS_TOTAL: &str = "router_parse_errors_total";
/// Well-formed messages of a type the gatherer does not know, by `type`.
pub const ROUTER_UNKNOWN_MESSAGES_TOTAL: &str = "router_unknown_messages_total";
/// WebSocket snapshots not stored because the instant their book held cannot be known: a
/// sequence gap opened (`why=gap`) or the connection ended (`why=closed`) before the next delta
/// of their market arrived. A fresh snapshot is asked for in both cases.
pub const ROUTER_SNAPSHOTS_UNTIMED_TOTAL: &str = "router_snapshots_untimed_total";
/// Records dropped because the writer queue stayed full (each recorded as a gap), by `table`.
pub const ROUTER_DROPPED_TOTAL: &str = "router_dropped_total";
/// WebSocket trades not stored again because their `trade_id` was already stored (by a gap's
/// REST backfill that ran ahead of a lagging socket, or a resend after a resubscribe).
pub const ROUTER_TRADES_ALREADY_STORED_TOTAL: &str = "router_trades_already_stored_total";
/// Times the router waited for room in the writer queue (backpressure).
pub const ROUTER_BACKPRESSURE_TOTAL: &str = "router_backpressure_total";
/// Router errors (a message that parsed but could not be routed), by `kind`.
pub const ROUTER_ERRORS_TOTAL: &str = "router_errors_total";

// Sequence tracking.
/// Gaps detected, by `reason` (`seq_gap`, `no_snapshot`, `channel_error`, `dropped`, …).
pub const SEQUENCE_GAPS_TOTAL: &str = "sequence_gaps_total";
/// Messages the gap detector saw more than once or out of order (ignored for gap purposes).
pub const SEQUENCE_STALE_TOTAL: &str = "sequence_stale_total";

// Writer.
/// Rows committed, by `table`.
pub const WRITER_ROWS_TOTAL: &str = "writer_rows_total";
/// Transactions committed.
pub const WRITER_BATCHES_TOTAL: &str = "writer_batches_total";
/// Rows per committed transaction (histogram).
pub const WRITER_BATCH_ROWS: &str = "writer_batch_rows";
/// Seconds per commit (histogram).
pub const WRITER_COMMIT_SECONDS: &str = "writer_commit_seconds";
/// Seconds from the gatherer receiving a row to its commit (histogram).
pub const WRITER_RECEIVE_TO_COMMIT_SECONDS: &str = "writer_receive_to_commit_seconds";
/// Failed commits (retried).
pub const WRITER_ERRORS_TOTAL: &str = "writer_errors_total";
/// Commit retries.
pub const WRITER_RETRIES_TOTAL: &str = "writer_retries_total";
/// Rows the writer gave up on (only at shutdown with a failing disk; logged and counted).
pub const WRITER_DROPPED_TOTAL: &str = "writer_dropped_total";
/// Records waiting in the router → writer queue (gauge).
pub const WRITER_QUEUE_DEPTH: &str = "writer_queue_depth";

// Store.
/// Bytes of the store's files (gauge; alert at 80 % of the disk).
pub const STORE_DISK_BYTES: &str = "store_disk_bytes";
/// Highest committed sequence, by `table` (gauge).
pub const STORE_HEAD: &str = "store_head";
/// Rows committed but not acknowledged, by `table` (gauge).
pub const STORE_UNACKED_ROWS: &str = "store_unacked_rows";
/// Rows deleted by retention, by `table`.
pub const STORE_RETENTION_DELETED_TOTAL: &str = "store_retention_deleted_total";
/// Store errors outside commits (retention, acks), by `kind`.
pub const STORE_ERRORS_TOTAL: &str = "store_errors_total";
/// Failed commits of received data, by `kind` (`disk_full`, `io`, `busy`, `corrupt`, `other`).
/// Alert on any increase: the batch is kept and retried, the queue behind it fills.
pub const STORE_WRITE_ERRORS_TOTAL: &str = "store_write_errors_total";
/// Gap records merged into a gap of the same market, channel and reason already in the kept
/// batch while a commit was retried (the kept batch stays bounded during a store failure).
pub const WRITER_GAPS_COALESCED_TOTAL: &str = "writer_gaps_coalesced_total";
/// Gap records the kept batch gained while its commit is retried: at most one per market,
/// channel and reason however long the store fails; 0 while commits succeed (gauge).
pub const WRITER_KEPT_GAPS: &str = "writer_kept_gaps";
/// Pull requests that waited for one of the pull API's concurrent-read permits.
pub const PULL_WAITS_TOTAL: &str = "pull_waits_total";
/// 1 while commits fail (the store is full or broken), else 0 (gauge).
pub const STORE_WRITE_FAILING: &str = "store_write_failing";

// Pull API.
/// Pull requests served, by `table`.
pub const PULL_REQUESTS_TOTAL: &str = "pull_requests_total";
/// Rows served, by `table`.
pub const PULL_ROWS_TOTAL: &str = "pull_rows_total";
/// Stored rows that could not be read, served as quarantine entries (each time a page holds
/// one), by `table`.
pub const PULL_QUARANTINED_TOTAL: &str = "pull_quarantined_total";
/// Acknowledgements received, by `table`.
pub const PULL_ACKS_TOTAL: &str = "pull_acks_total";
/// Requests refused or failed, by `kind` (`auth`, `table`, `store`, `ack`).
pub const PULL_ERRORS_TOTAL: &str = "pull_errors_total";

// Repair.
/// Trade backfills run, by `reason` (`seq_gap`, `dropped`, `disconnected`, `downtime`, …).
pub const REPAIR_BACKFILLS_TOTAL: &str = "repair_backfills_total";
/// Trades recovered over REST that the WebSocket had not delivered.
pub const REPAIR_TRADES_RECOVERED_TOTAL: &str = "repair_trades_recovered_total";
/// Fresh snapshots requested after a gap (`get_snapshot`).
pub const REPAIR_SNAPSHOT_REQUESTS_TOTAL: &str = "repair_snapshot_requests_total";
/// Backfill failures, by `kind`.
pub const REPAIR_ERRORS_TOTAL: &str = "repair_errors_total";

// Clock.
/// Estimated offset of this gatherer's clock from the exchange's, in seconds (local − exchange,
/// plus the smallest recent latency; gauge). Beyond 1 s the gatherer logs a warning; exchange
/// times are corrected with it either way (docs/gatherer.md "Clocks").
pub const GATHERER_CLOCK_OFFSET_SECONDS: &str = "gatherer_clock_offset_seconds";
/// `orderbook_delta` subscriptions whose NO levels arrived on the other price scale than the
/// one asked for with `use_yes_price` (the flag ignored, or removed). Their data is re-read on
/// the scale seen, never stored on the wrong one. Alert on any increase.
pub const GATHERER_PRICE_SCALE_MISMATCH_TOTAL: &str = "gatherer_price_scale_mismatch_total";
/// Subscriptions whose NO-side scale no snapshot could prove within the holding bound (every
/// book one-sided or ambiguous); their data is stored on the scale asked for.
pub const GATHERER_PRICE_SCALE_UNDECIDED_TOTAL: &str = "gatherer_price_scale_undecided_total";

// Snapshot poller.
/// REST order books stored.
pub const POLLER_SNAPSHOTS_TOTAL: &str = "poller_snapshots_total";
/// Markets skipped in a cycle, by `kind` (retried next cycle).
pub const POLLER_ERRORS_TOTAL: &str = "poller_errors_total";
/// Poll cycles completed.
pub const POLLER_CYCLES_TOTAL: &str = "poller_cycles_total";

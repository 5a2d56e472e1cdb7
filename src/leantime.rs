//! Leantime: unread notifications and the tasks assigned to the user, over
//! its JSON-RPC 2.0 API (`{base}/api/jsonrpc`).
//!
//! Leantime cannot push to an API client, so this source is polled on the
//! hybrid scheduler, one batched request per poll. So far only the wire layer
//! exists ([`rpc`]: envelopes, batches, error classification, lenient rows);
//! the watcher that uses it comes with the Leantime issue.

pub mod rpc;

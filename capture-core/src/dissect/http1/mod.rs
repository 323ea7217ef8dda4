//! HTTP/1.0 and HTTP/1.1: the template every later protocol copies.
//!
//! - [`fast`]: the head parser's fast path, for heads in their plainest form;
//! - [`names`]: the field names the parser acts on, found with one table lookup;
//! - [`parse`]: pure functions over bytes (probes, header blocks, chunked coding);
//! - [`state`]: one connection's state: message framing per direction, request/response
//!   pairing (keep-alive, pipelining, 1xx interim responses, Upgrade), gaps and re-sync.

pub mod fast;
pub mod names;
pub mod parse;
pub mod state;

#[cfg(test)]
mod tests;

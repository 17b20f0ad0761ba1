//! Limits on a request's head, beside the body limit of the configuration:
//! read by the checks that enforce them, the error table and the document.

/// Longest query string accepted (414 above it).
pub(crate) const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Most header fields a request may have (each value of a repeated name
/// counts): hyper's own default, which clients already live within.
pub(crate) const MAX_HEADERS: usize = 100;

/// Most bytes of header fields (names, values and their separators) a
/// request may have. The old service (h11) allowed 16 KiB for the whole head.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

//! Toward the vendors: the one [`send`](send::send) every attempt goes through (vendor errors
//! decoded per API and scrubbed of secrets), and reading and finishing same-protocol answers
//! ([`answer`]: routing headers, the outcome the edge logs, body limits).

pub(crate) mod answer;
pub(crate) mod send;

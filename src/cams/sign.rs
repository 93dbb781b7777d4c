//! Signature V1 (HMAC-SHA1) for Alibaba Cloud RPC requests.

//! The assets page (placeholder replaced below).

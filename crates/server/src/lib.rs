//! calling-server

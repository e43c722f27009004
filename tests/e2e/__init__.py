"""End-to-end tests of the distributed path: real processes on Redis and PostgreSQL."""

"""Throwaway servers for the tests (started on first use, stopped at session end)."""

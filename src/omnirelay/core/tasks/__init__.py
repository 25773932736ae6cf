"""Durable tasks: every long job is a database row before it is an upstream call."""

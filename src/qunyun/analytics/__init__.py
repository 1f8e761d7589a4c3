"""Read-only analytics over members, member_events and messages."""

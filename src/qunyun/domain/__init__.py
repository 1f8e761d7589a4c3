"""Pure domain types: events (past tense), actions (imperative), value objects. No I/O."""

"""Platform adapters: each declares capabilities, parses raw payloads and sends actions."""

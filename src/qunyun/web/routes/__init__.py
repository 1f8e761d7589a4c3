"""One router per feature stem; pages and the JSON API call services only."""

"""Chat-export files (WeChat MemoTrace CSV, chatlog JSON, Telegram Desktop JSON, IRC text)."""

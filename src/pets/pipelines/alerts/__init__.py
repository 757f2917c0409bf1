"""Outside notification channels (Telegram, Discord) and local servers speaking their protocols."""

"""What the bot tells operators about itself: JSON log lines and Prometheus metrics."""
